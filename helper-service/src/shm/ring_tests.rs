//! Tests of the packet ring, its wakeups and `sleep`.

use super::*;
use crate::shm::sleep::sleep_with;
use crate::shm::wake::WakeFd;
use crate::shm::{Readiness, sleep};
use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::uio::{pread, pwrite};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn dup(fd: &OwnedFd) -> OwnedFd {
    fd.try_clone().expect("dup")
}

fn pair(slots: u32) -> (Producer, Consumer, OwnedFd, WakeFd) {
    let fd = create_ring("test", slots).expect("ring");
    let w = WakeFd::new().expect("eventfd");
    let p = Producer::attach(dup(&fd), w.waker().expect("waker")).expect("producer");
    let c = Consumer::attach(dup(&fd)).expect("consumer");
    (p, c, fd, w)
}

fn put_u32(fd: &OwnedFd, off: u64, v: u32) {
    assert_eq!(pwrite(fd, &v.to_ne_bytes(), off as i64).expect("pwrite"), 4);
}

fn get_u32(fd: &OwnedFd, off: u64) -> u32 {
    let mut b = [0u8; 4];
    assert_eq!(pread(fd, &mut b, off as i64).expect("pread"), 4);
    u32::from_ne_bytes(b)
}

fn readable(fd: BorrowedFd<'_>) -> bool {
    let mut p = [PollFd::new(fd, PollFlags::POLLIN)];
    poll(&mut p, PollTimeout::ZERO).expect("poll") == 1
}

/// Packet `seq` of the sequence tests: the sequence number, then a
/// pattern, with a length that varies across the whole range used.
fn packet(seq: u64, out: &mut Vec<u8>) -> Meta {
    let len = 8 + (seq as usize * 37) % 1393;
    out.clear();
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend((8..len).map(|i| (seq as u8).wrapping_mul(31).wrapping_add(i as u8)));
    Meta {
        addr: Some(SocketAddrV4::new(
            Ipv4Addr::new(127, 0, (seq >> 8) as u8, seq as u8),
            (seq % 65535) as u16 + 1,
        )),
        kind: seq as u8,
    }
}

fn check_packet(seq: u64, meta: Meta, got: &[u8], scratch: &mut Vec<u8>) {
    let want = packet(seq, scratch);
    assert_eq!(meta, want, "meta of packet {seq}");
    assert_eq!(got, &scratch[..], "bytes of packet {seq}");
}

#[test]
fn round_trip_exact_bytes_and_meta() {
    let (mut p, mut c, _fd, _w) = pair(16);
    let cases: Vec<(Meta, Vec<u8>)> = [0usize, 1, 7, 8, 9, 15, 1400, SLOT_DATA]
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            let meta = Meta {
                addr: (i % 2 == 0).then(|| {
                    SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, i as u8), 40000 + i as u16)
                }),
                kind: 0xf0 | i as u8,
            };
            let data = (0..len).map(|j| (j * 7 + i) as u8).collect();
            (meta, data)
        })
        .collect();
    for (m, d) in &cases {
        p.push(*m, d).expect("push");
    }
    assert_eq!(p.free_slots(), 16 - cases.len() as u32);
    assert!(!c.is_empty());
    let mut buf = vec![0xccu8; SLOT_DATA];
    for (m, d) in &cases {
        let (meta, len) = c.pop(&mut buf).expect("packet");
        assert_eq!(meta, *m);
        assert_eq!(&buf[..len], &d[..]);
    }
    assert!(c.pop(&mut buf).is_none());
    assert!(c.is_empty());
    assert_eq!(c.dropped_malformed(), 0);
    assert_eq!(
        p.push(Meta::default(), &vec![0; SLOT_DATA + 1]),
        Err(PushError::TooLong(SLOT_DATA + 1))
    );
    assert_eq!(
        p.push(Meta::default(), &vec![0; 70_000]),
        Err(PushError::TooLong(70_000))
    );
    // A port-only address survives; 0.0.0.0:0 is "no address".
    let m = Meta {
        addr: Some(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 53)),
        kind: 1,
    };
    p.push(m, b"x").expect("push");
    assert_eq!(c.pop(&mut buf), Some((m, 1)));
}

#[test]
fn full_ring_refuses_then_recovers() {
    let (mut p, mut c, _fd, _w) = pair(8);
    assert_eq!(p.capacity(), 8);
    for i in 0..8u8 {
        p.push(Meta::default(), &[i]).expect("push");
    }
    assert_eq!(p.free_slots(), 0);
    assert_eq!(p.push(Meta::default(), &[8]), Err(PushError::Full));
    let mut buf = [0u8; SLOT_DATA];
    assert_eq!(c.pop(&mut buf), Some((Meta::default(), 1)));
    assert_eq!(buf[0], 0);
    p.push(Meta::default(), &[8]).expect("room again");
    assert_eq!(p.push(Meta::default(), &[9]), Err(PushError::Full));
    for want in 1..=8u8 {
        assert_eq!(c.pop(&mut buf).map(|(_, l)| l), Some(1));
        assert_eq!(buf[0], want);
    }
    assert!(c.pop(&mut buf).is_none());
}

#[test]
fn wrap_around_over_many_cycles_and_the_u32_boundary() {
    let fd = create_ring("wrap", 4).expect("ring");
    // Start both indices just below 2^32 so the counters wrap too.
    put_u32(&fd, layout::HEAD, u32::MAX - 20);
    put_u32(&fd, layout::TAIL, u32::MAX - 20);
    let w = WakeFd::new().expect("eventfd");
    let mut p = Producer::attach(dup(&fd), w.waker().expect("waker")).expect("producer");
    let mut c = Consumer::attach(dup(&fd)).expect("consumer");
    let (mut seq_in, mut seq_out) = (0u64, 0u64);
    let (mut pkt, mut scratch) = (Vec::new(), Vec::new());
    let mut buf = vec![0u8; SLOT_DATA];
    for round in 0..5000u64 {
        // Batches of 1..=5: sometimes more than fit.
        for _ in 0..(round % 5 + 1) {
            let meta = packet(seq_in, &mut pkt);
            match p.push(meta, &pkt) {
                Ok(()) => seq_in += 1,
                Err(PushError::Full) => break,
                Err(e) => panic!("{e}"),
            }
        }
        p.wake();
        for _ in 0..(round % 3 + 1) {
            let Some((meta, len)) = c.pop(&mut buf) else {
                break;
            };
            check_packet(seq_out, meta, &buf[..len], &mut scratch);
            seq_out += 1;
        }
    }
    while let Some((meta, len)) = c.pop(&mut buf) {
        check_packet(seq_out, meta, &buf[..len], &mut scratch);
        seq_out += 1;
    }
    assert_eq!(seq_out, seq_in);
    assert!(seq_in > 5000, "only {seq_in} packets went through");
    assert_eq!(
        get_u32(&fd, layout::HEAD),
        (u32::MAX - 20).wrapping_add(seq_in as u32)
    );
    assert_eq!(get_u32(&fd, layout::TAIL), get_u32(&fd, layout::HEAD));
    assert_eq!(c.dropped_malformed(), 0);
}

#[test]
fn attach_validates_the_header() {
    let w = WakeFd::new().expect("eventfd");
    let fresh = || create_ring("hdr", 2).expect("ring");

    let fd = fresh();
    assert_eq!(pwrite(&fd, b"X", 0).expect("pwrite"), 1);
    assert!(matches!(
        Consumer::attach(fd),
        Err(ShmError::BadMagic { .. })
    ));

    for (bad, slots) in [(3u32, 3u32), (8192, 8192), (0, 0)] {
        let fd = fresh();
        put_u32(&fd, 12, bad);
        assert!(
            matches!(Consumer::attach(fd), Err(ShmError::BadSlotCount(s)) if s == slots),
            "slot count {bad}"
        );
    }

    // A slot count that needs more memory than the memfd has.
    let fd = fresh();
    put_u32(&fd, 12, 4096);
    assert!(matches!(
        Producer::attach(fd, w.waker().expect("waker")),
        Err(ShmError::TooSmall { .. })
    ));

    let fd = fresh();
    put_u32(&fd, 16, 1024);
    assert!(matches!(
        Consumer::attach(fd),
        Err(ShmError::BadSlotSize { found: 1024, .. })
    ));

    let fd = fresh();
    put_u32(&fd, 8, 2);
    assert!(matches!(
        Consumer::attach(fd),
        Err(ShmError::BadVersion { found: 2, .. })
    ));

    let fd = fresh();
    put_u32(&fd, layout::HEAD, 3);
    assert!(matches!(
        Consumer::attach(fd),
        Err(ShmError::CorruptIndices {
            head: 3,
            tail: 0,
            slots: 2
        })
    ));

    assert!(matches!(
        create_ring("bad", 6),
        Err(ShmError::BadSlotCount(6))
    ));
    assert!(matches!(
        create_ring("bad", 8192),
        Err(ShmError::BadSlotCount(8192))
    ));
}

#[test]
fn hostile_length_is_dropped_and_counted() {
    let (mut p, mut c, fd, _w) = pair(4);
    p.push(Meta::default(), b"first").expect("push");
    p.push(Meta::default(), b"second").expect("push");
    // Slot 0's length becomes 0xffff.
    assert_eq!(
        pwrite(&fd, &[0xff, 0xff], layout::SLOTS as i64).expect("pwrite"),
        2
    );
    let mut buf = [0u8; SLOT_DATA];
    assert_eq!(c.pop(&mut buf).map(|(_, l)| l), Some(6));
    assert_eq!(&buf[..6], b"second");
    assert_eq!(c.dropped_malformed(), 1);

    // A length that is valid for a slot but larger than the caller's
    // buffer is dropped too, not truncated.
    p.push(Meta::default(), &[1; 100]).expect("push");
    let mut small = [0u8; 10];
    assert!(c.pop(&mut small).is_none());
    assert_eq!(c.dropped_malformed(), 2);
    assert_eq!(get_u32(&fd, layout::TAIL), 3);
}

#[test]
fn hostile_indices_never_panic() {
    let (mut p, mut c, fd, _w) = pair(4);
    let mut buf = [0u8; SLOT_DATA];
    p.push(Meta::default(), b"a").expect("push");
    // The producer claims far more entries than the ring has.
    put_u32(&fd, layout::HEAD, 1000);
    assert!(!c.is_empty());
    assert!(c.pop(&mut buf).is_none());
    assert_eq!(c.dropped_malformed(), 1);
    // The consumer skipped to the claimed head.
    assert_eq!(get_u32(&fd, layout::TAIL), 1000);

    // The consumer claims to have read more than was written: the
    // producer ignores it and keeps to what it knows.
    let (mut p2, _c2, fd2, _w2) = pair(4);
    for i in 0..4u8 {
        p2.push(Meta::default(), &[i]).expect("push");
    }
    put_u32(&fd2, layout::TAIL, 100);
    assert_eq!(p2.free_slots(), 0);
    assert_eq!(p2.push(Meta::default(), b"x"), Err(PushError::Full));
    // Our own head is what the producer keeps using.
    put_u32(&fd2, layout::HEAD, 77);
    put_u32(&fd2, layout::TAIL, 1);
    p2.push(Meta::default(), b"y").expect("push");
    assert_eq!(get_u32(&fd2, layout::HEAD), 5);
    drop(p);
}

/// Random writes over the header and slot headers, interleaved with
/// pushes and pops: nothing may panic, and nothing popped is longer than a
/// slot.
#[test]
fn random_corruption_never_panics() {
    let (mut p, mut c, fd, _w) = pair(8);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut buf = vec![0u8; SLOT_DATA];
    let mut popped = 0u64;
    for _ in 0..20_000 {
        let r = rnd();
        match r % 4 {
            0 => {
                let off = match (r >> 8) % 3 {
                    0 => layout::HEAD,
                    1 => layout::TAIL,
                    _ => layout::SLOTS + ((r >> 16) % 8) * layout::SLOT + ((r >> 24) % 16),
                };
                let v = rnd();
                let bytes = &v.to_ne_bytes()[..1 + (r >> 32) as usize % 4];
                pwrite(&fd, bytes, off as i64).expect("pwrite");
            }
            1 => {
                let _ = p.push(Meta::default(), &buf[..(r >> 8) as usize % 1500]);
                p.wake();
            }
            _ => {
                if let Some((_, len)) = c.pop(&mut buf) {
                    assert!(len <= SLOT_DATA);
                    popped += 1;
                }
                let _ = c.is_empty();
                let _ = p.free_slots();
            }
        }
    }
    assert!(popped > 0);
    assert!(c.dropped_malformed() > 0);
}

#[test]
fn wake_only_when_the_consumer_announced_sleep() {
    let (mut p, mut c, fd, w) = pair(4);
    // Not announced: no eventfd write.
    p.push(Meta::default(), b"1").expect("push");
    p.wake();
    assert!(!readable(w.as_fd()));
    // Data waiting: prepare_sleep refuses and withdraws the announcement.
    assert!(!c.prepare_sleep());
    assert_eq!(get_u32(&fd, layout::SLEEP), 0);
    let mut buf = [0u8; SLOT_DATA];
    assert!(c.pop(&mut buf).is_some());
    // Announced, nothing unread: still no write.
    assert!(c.prepare_sleep());
    assert_eq!(get_u32(&fd, layout::SLEEP), 1);
    p.wake();
    assert!(!readable(w.as_fd()));
    // Announced and a batch pushed: exactly one wake, the flag is cleared,
    // a second wake() for a later batch does not write again.
    p.push(Meta::default(), b"2").expect("push");
    p.push(Meta::default(), b"3").expect("push");
    p.wake();
    assert!(readable(w.as_fd()));
    assert_eq!(get_u32(&fd, layout::SLEEP), 0);
    let mut counter = [0u8; 8];
    assert_eq!(nix::unistd::read(w.as_fd(), &mut counter).expect("read"), 8);
    assert_eq!(u64::from_ne_bytes(counter), 1);
    p.push(Meta::default(), b"4").expect("push");
    p.wake();
    assert!(!readable(w.as_fd()));
    c.woke();
    assert_eq!(get_u32(&fd, layout::SLEEP), 0);
}

#[test]
fn sleep_returns_at_once_when_data_is_already_there() {
    let (mut p, mut c, fd, w) = pair(4);
    p.push(Meta::default(), b"x").expect("push");
    // No wake(): prepare_sleep's re-check finds the packet. The timeout is
    // far beyond any test run, so hanging would fail the test run.
    let r = sleep(&mut [&mut c], &w, &[], Some(Duration::from_secs(600))).expect("sleep");
    assert_eq!(
        r,
        Readiness {
            rings: true,
            ..Readiness::default()
        }
    );
    assert_eq!(get_u32(&fd, layout::SLEEP), 0);
}

#[test]
fn no_lost_wakeup_between_announce_and_poll() {
    let fd_a = create_ring("a", 4).expect("ring");
    let fd_b = create_ring("b", 4).expect("ring");
    let w = WakeFd::new().expect("eventfd");
    let mut ca = Consumer::attach(dup(&fd_a)).expect("consumer");
    let mut cb = Consumer::attach(dup(&fd_b)).expect("consumer");
    let mut pb = Producer::attach(dup(&fd_b), w.waker().expect("waker")).expect("producer");
    // Both rings announced and re-checked empty; then, before poll, the
    // producer of the second ring pushes and wakes. poll must return at
    // once through the eventfd (a lost wakeup would sleep for 600 s).
    let r = sleep_with(
        &mut [&mut ca, &mut cb],
        &w,
        &[],
        Some(Duration::from_secs(600)),
        || {
            assert_eq!(get_u32(&fd_a, layout::SLEEP), 1);
            assert_eq!(get_u32(&fd_b, layout::SLEEP), 1);
            pb.push(Meta::default(), b"late").expect("push");
            pb.wake();
        },
    )
    .expect("sleep");
    assert!(r.rings && !r.timed_out, "{r:?}");
    // Announcements cleared, eventfd drained.
    assert_eq!(get_u32(&fd_a, layout::SLEEP), 0);
    assert_eq!(get_u32(&fd_b, layout::SLEEP), 0);
    assert!(!readable(w.as_fd()));
    let mut buf = [0u8; SLOT_DATA];
    assert_eq!(cb.pop(&mut buf).map(|(_, l)| l), Some(4));
}

#[test]
fn sleep_times_out_and_reports_extra_fds() {
    let (_p, mut c, _fd, w) = pair(4);
    let r = sleep(&mut [&mut c], &w, &[], Some(Duration::from_millis(1))).expect("sleep");
    assert!(r.timed_out && !r.rings, "{r:?}");

    let other = WakeFd::new().expect("eventfd");
    let quiet = WakeFd::new().expect("eventfd");
    other.waker().expect("waker").wake();
    let r = sleep(
        &mut [&mut c],
        &w,
        &[quiet.as_fd(), other.as_fd()],
        Some(Duration::from_secs(600)),
    )
    .expect("sleep");
    assert_eq!(
        r,
        Readiness {
            extra: 0b10,
            ..Readiness::default()
        }
    );
    let many: Vec<BorrowedFd<'_>> = (0..33).map(|_| quiet.as_fd()).collect();
    assert!(matches!(
        sleep(&mut [&mut c], &w, &many, None),
        Err(ShmError::TooManyFds(33))
    ));
}

const CHILD_ENV: &str = "CHANTRY_SHM_TEST_CHILD";
const XPROC_PACKETS: u64 = 100_000;

/// The producer half of `cross_process_in_order`, run in a child process
/// (a no-op in a normal test run).
#[test]
fn child_producer() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let fds: Vec<i32> = spec
        .split(',')
        .map(|s| s.parse().expect("fd number"))
        .collect();
    // SAFETY: the parent passed these two fds to this process without
    // close-on-exec and nothing else in this process claims them.
    let (ring, waker) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut p = Producer::attach(ring, Waker::from_fd(waker)).expect("producer");
    let guard = Instant::now();
    let mut pkt = Vec::new();
    for seq in 0..XPROC_PACKETS {
        let meta = packet(seq, &mut pkt);
        while let Err(e) = p.push(meta, &pkt) {
            assert_eq!(e, PushError::Full);
            // Back-pressure: make sure the consumer runs, then let it.
            p.wake();
            std::thread::yield_now();
            assert!(
                guard.elapsed() < Duration::from_secs(120),
                "consumer stalled"
            );
        }
        // Batches of varying size, one wake each.
        if seq % 7 == 0 || seq % 31 == 0 {
            p.wake();
        }
    }
    p.wake();
}

#[test]
fn cross_process_in_order() {
    let fd = create_ring("xproc", 64).expect("ring");
    let w = WakeFd::new().expect("eventfd");
    let mut c = Consumer::attach(dup(&fd)).expect("consumer");
    let ring_child = dup(&fd);
    let waker_child = w.waker().expect("waker");
    for f in [ring_child.as_fd(), waker_child.as_fd()] {
        fcntl(f, FcntlArg::F_SETFD(FdFlag::empty())).expect("clear cloexec");
    }
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "shm::ring::tests::child_producer",
            "--test-threads=1",
        ])
        .env(
            CHILD_ENV,
            format!(
                "{},{}",
                ring_child.as_raw_fd(),
                waker_child.as_fd().as_raw_fd()
            ),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn child");
    drop(ring_child);
    drop(waker_child);

    let mut buf = vec![0u8; SLOT_DATA];
    let mut scratch = Vec::new();
    let mut next = 0u64;
    let mut idle = 0;
    let mut woken = 0u64;
    while next < XPROC_PACKETS {
        while let Some((meta, len)) = c.pop(&mut buf) {
            check_packet(next, meta, &buf[..len], &mut scratch);
            next += 1;
            idle = 0;
        }
        if next == XPROC_PACKETS {
            break;
        }
        let r = sleep(&mut [&mut c], &w, &[], Some(Duration::from_secs(2))).expect("sleep");
        if r.rings {
            woken += 1;
        }
        if r.timed_out {
            idle += 1;
            if let Ok(Some(st)) = child.try_wait() {
                assert!(c.is_empty(), "child exited ({st}) and data left behind");
                panic!("child exited ({st}) after {next} packets");
            }
            if idle > 30 {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no progress for 30 polls, stuck at packet {next}");
            }
        }
    }
    assert_eq!(c.dropped_malformed(), 0);
    assert!(woken > 0);
    let mut status = None;
    for _ in 0..3000 {
        if let Some(st) = child.try_wait().expect("try_wait") {
            status = Some(st);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("child did not exit");
    };
    assert!(status.success(), "child failed: {status}");
}
