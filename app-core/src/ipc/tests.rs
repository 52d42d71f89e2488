use super::*;

#[test]
fn frame_is_big_endian_length_then_payload() {
    assert_eq!(encode_frame(b"{}").unwrap(), b"\x00\x00\x00\x02{}");
    let hello = ClientHello {
        version: 1,
        client: "t".into(),
    };
    assert_eq!(
        encode_message(&hello).unwrap(),
        b"\x00\x00\x00\x1a{\"version\":1,\"client\":\"t\"}"
    );
}

#[test]
fn encode_refuses_empty_and_oversized() {
    assert_eq!(encode_frame(b""), Err(FrameError::Empty));
    let big = vec![b' '; MAX_FRAME + 1];
    assert_eq!(
        encode_frame(&big),
        Err(FrameError::TooLarge {
            len: MAX_FRAME as u64 + 1,
            max: MAX_FRAME
        })
    );
    assert_eq!(
        encode_frame(&big[..MAX_FRAME]).unwrap().len(),
        MAX_FRAME + 4
    );
}

#[test]
fn decode_needs_whole_frames() {
    assert_eq!(decode_frame(b"", MAX_FRAME), Ok(None));
    assert_eq!(decode_frame(b"\x00\x00\x00", MAX_FRAME), Ok(None));
    assert_eq!(decode_frame(b"\x00\x00\x00\x03ab", MAX_FRAME), Ok(None));
    assert_eq!(
        decode_frame(b"\x00\x00\x00\x02abXYZ", MAX_FRAME),
        Ok(Some((&b"ab"[..], 6)))
    );
}

#[test]
fn decode_rejects_empty_and_oversized_from_the_prefix_alone() {
    assert_eq!(
        decode_frame(b"\x00\x00\x00\x00", MAX_FRAME),
        Err(FrameError::Empty)
    );
    assert_eq!(
        decode_frame(b"\x00\x10\x00\x01", MAX_FRAME),
        Err(FrameError::TooLarge {
            len: 0x0010_0001,
            max: MAX_FRAME
        })
    );
    assert_eq!(
        decode_frame(b"\xff\xff\xff\xff", usize::MAX),
        Err(FrameError::TooLarge {
            len: 0xffff_ffff,
            max: MAX_FRAME
        })
    );
    // A smaller limit of the decoder's own.
    assert_eq!(
        decode_frame(b"\x00\x00\x00\x09", 8),
        Err(FrameError::TooLarge { len: 9, max: 8 })
    );
}

#[test]
fn decoder_splits_a_stream_fed_byte_by_byte() {
    let mut stream = encode_frame(b"one").unwrap();
    stream.extend(encode_frame(b"two!").unwrap());
    stream.extend(b"\x00\x00");
    let mut d = FrameDecoder::default();
    let mut got = Vec::new();
    for b in &stream {
        d.extend(std::slice::from_ref(b));
        while let Some(f) = d.next_frame().unwrap() {
            got.push(f);
        }
    }
    assert_eq!(got, vec![b"one".to_vec(), b"two!".to_vec()]);
    assert_eq!(d.buffered(), 2);
    assert_eq!(d.finish(), Err(FrameError::Truncated { buffered: 2 }));
    let empty = FrameDecoder::new(16);
    assert_eq!(empty.finish(), Ok(()));
}

#[test]
fn request_json_is_stable() {
    let frame = RequestFrame {
        id: 7,
        request: Request::Connect {
            name: "home".into(),
        },
    };
    let json = serde_json::to_string(&frame).unwrap();
    assert_eq!(json, r#"{"id":7,"request":{"op":"connect","name":"home"}}"#);
    assert_eq!(
        decode_message::<RequestFrame>(json.as_bytes()).unwrap(),
        frame
    );
    let list: RequestFrame = decode_message(br#"{"id":1,"request":{"op":"list"}}"#).unwrap();
    assert_eq!(list.request, Request::List);
    let status: RequestFrame = decode_message(br#"{"id":2,"request":{"op":"status"}}"#).unwrap();
    assert_eq!(status.request, Request::Status { name: None });
}

#[test]
fn malformed_messages_are_errors() {
    for bad in [
        &br#"{"id":1,"request":{"op":"reboot"}}"#[..],
        br#"{"id":1,"request":{"op":"connect"}}"#,
        br#"{"id":-1,"request":{"op":"list"}}"#,
        br#"{"id":1,"request":{"op":"list"},"extra":1}"#,
        b"\xff\xfe",
        b"[",
    ] {
        let e = decode_message::<RequestFrame>(bad).unwrap_err();
        assert!(matches!(e, FrameError::Malformed(_)), "{e:?}");
    }
}

#[test]
fn key_material_is_hex_and_never_printed() {
    let req = Request::Import(ImportRequest {
        name: "p".into(),
        config: "mode tunnel\n".into(),
        secret: KeyMaterial::new(vec![0x00, 0xab, 0x7f]),
        auto_connect: true,
        always_on: false,
        kek: None,
        cathedral_secret: None,
        cathedral_cosk: None,
    });
    let json = serde_json::to_string(&req).unwrap();
    assert_eq!(
        json,
        r#"{"op":"import","name":"p","config":"mode tunnel\n","secret":"00ab7f","auto_connect":true,"always_on":false}"#
    );
    assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), req);
    // The cathedral key files are optional fields, present when given.
    let Request::Import(mut with_kek) = req.clone() else {
        unreachable!()
    };
    with_kek.kek = Some(KeyMaterial::new(vec![0x01]));
    let json = serde_json::to_string(&Request::Import(with_kek.clone())).unwrap();
    assert!(json.ends_with(r#""always_on":false,"kek":"01"}"#), "{json}");
    assert_eq!(
        serde_json::from_str::<Request>(&json).unwrap(),
        Request::Import(with_kek)
    );
    let debug = format!("{req:?}");
    assert!(debug.contains("KeyMaterial(3 bytes, redacted)"), "{debug}");
    assert!(!debug.contains("ab"), "{debug}");
    for bad in [r#""abc""#, r#""zz""#] {
        assert!(serde_json::from_str::<KeyMaterial>(bad).is_err(), "{bad}");
    }
    let upper: KeyMaterial = serde_json::from_str(r#""AB""#).unwrap();
    assert_eq!(upper.expose(), &[0xab]);
}

#[test]
fn privileges_split_reading_from_changing() {
    let member = [
        Request::List,
        Request::Status { name: None },
        Request::Subscribe,
        Request::Connect { name: "a".into() },
        Request::Disconnect { name: "a".into() },
    ];
    for r in &member {
        assert_eq!(r.needs(), Privilege::Member, "{}", r.op());
    }
    let admin = [
        Request::Remove { name: "a".into() },
        Request::Export { name: "a".into() },
        Request::Edit {
            name: "a".into(),
            auto_connect: Some(true),
            always_on: None,
        },
    ];
    for r in &admin {
        assert_eq!(r.needs(), Privilege::Admin, "{}", r.op());
    }
    assert!(Privilege::Admin > Privilege::Member && Privilege::Member > Privilege::None);
}

#[test]
fn server_messages_are_tagged() {
    let refused = ServerMessage::Error {
        id: Some(3),
        error: ErrorReply {
            code: ErrorCode::Forbidden,
            message: "import needs root or the chantry-admin group".into(),
            line: None,
        },
    };
    assert_eq!(
        serde_json::to_string(&refused).unwrap(),
        r#"{"type":"error","id":3,"error":{"code":"forbidden","message":"import needs root or the chantry-admin group"}}"#
    );
    let event = ServerMessage::Event(Event::State(TunnelStatus {
        name: "home".into(),
        state: TunnelState::Up,
        detail: None,
        pid: Some(42),
        stats: None,
    }));
    assert_eq!(
        serde_json::to_string(&event).unwrap(),
        r#"{"type":"event","event":"state","name":"home","state":"up","detail":null,"pid":42,"stats":null}"#
    );
    let done = ServerMessage::Response {
        id: 1,
        response: Response::Done,
    };
    let json = serde_json::to_string(&done).unwrap();
    assert_eq!(
        json,
        r#"{"type":"response","id":1,"response":{"kind":"done"}}"#
    );
    assert_eq!(
        decode_message::<ServerMessage>(json.as_bytes()).unwrap(),
        done
    );
}

#[test]
fn stats_events_and_new_requests_round_trip_with_stable_json() {
    use super::stats::*;
    let stats = TunnelStats {
        stage: Stage::Online,
        path: Some(PathKind::Relay),
        peer: Some("192.0.2.1:4500".into()),
        cathedral: Some("198.51.100.7:4500".into()),
        since_key_exchange_s: Some(12),
        mtu: 1422,
        tx: Counters {
            packets: 3,
            bytes: 300,
        },
        rx: Counters {
            packets: 4,
            bytes: 400,
        },
    };
    let event = ServerMessage::Event(Event::Stats {
        name: "home".into(),
        at: 1_700_000_000,
        stats,
    });
    let json = serde_json::to_string(&event).unwrap();
    assert_eq!(
        json,
        r#"{"type":"event","event":"stats","name":"home","at":1700000000,"stats":{"stage":"online","path":"relay","peer":"192.0.2.1:4500","cathedral":"198.51.100.7:4500","since_key_exchange_s":12,"mtu":1422,"tx":{"packets":3,"bytes":300},"rx":{"packets":4,"bytes":400}}}"#
    );
    assert_eq!(serde_json::from_str::<ServerMessage>(&json).unwrap(), event);

    let req: RequestFrame =
        serde_json::from_str(r#"{"id":1,"request":{"op":"logs","name":"home"}}"#).unwrap();
    assert_eq!(
        req.request,
        Request::Logs {
            name: Some("home".into()),
            limit: 100
        }
    );
    assert_eq!(req.request.needs(), Privilege::Member);

    let vicar: RequestFrame = serde_json::from_str(
        r#"{"id":2,"request":{"op":"import_vicar","name":"v","vicar":"00ff","passphrase":"hunter2","config":"instance v\n"}}"#,
    )
    .unwrap();
    let Request::ImportVicar(v) = &vicar.request else {
        panic!("not a vicar import: {vicar:?}");
    };
    assert_eq!(v.passphrase.expose(), "hunter2");
    assert_eq!(v.vicar.expose(), &[0x00, 0xff]);
    assert_eq!(vicar.request.needs(), Privilege::Admin);
    assert!(!format!("{vicar:?}").contains("hunter2"));

    let set = Request::SetSettings(Settings::default());
    assert_eq!(set.needs(), Privilege::Admin);
    assert_eq!(
        serde_json::to_string(&set).unwrap(),
        r#"{"op":"set_settings","reconnect_on_network_change":true,"log_level":"info"}"#
    );
}
