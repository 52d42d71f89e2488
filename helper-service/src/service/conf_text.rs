//! Line-level edits of sanctum.conf text that the service makes: key file
//! paths pointed at its own copies, the control socket moved into its run
//! directory, the lines a vicar file provides. The lexical rules are those
//! of spec/files.md §1.1 (leading whitespace skipped, tabs as spaces,
//! blank and `#` lines ignored, the keyword up to the first space); lines
//! that are not touched are kept byte for byte, so line numbers stay.

/// The configuration lines of `text`: (1-based line number, keyword,
/// value with surrounding whitespace removed). Blank and comment lines are
/// skipped.
pub fn lines(text: &str) -> impl Iterator<Item = (usize, &str, &str)> {
    text.lines().enumerate().filter_map(|(i, raw)| {
        let line = raw.trim_start_matches([' ', '\t']);
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let (keyword, value) = line.split_once([' ', '\t']).unwrap_or((line, ""));
        Some((i + 1, keyword, value.trim_matches([' ', '\t'])))
    })
}

/// The first line that sets `keyword`, with its value.
pub fn find<'a>(text: &'a str, keyword: &str) -> Option<(usize, &'a str)> {
    lines(text)
        .find(|(_, k, _)| *k == keyword)
        .map(|(n, _, v)| (n, v))
}

/// `text` with the first `keyword` line replaced by `keyword value` and
/// any later ones dropped. If there is none, `keyword value` is appended
/// when `add` is set; otherwise the text comes back unchanged. The result
/// ends with a newline.
pub fn set(text: &str, keyword: &str, value: &str, add: bool) -> String {
    let mut out = String::with_capacity(text.len() + keyword.len() + value.len() + 2);
    let mut done = false;
    let targets: Vec<usize> = lines(text)
        .filter(|(_, k, _)| *k == keyword)
        .map(|(n, _, _)| n)
        .collect();
    for (i, line) in text.lines().enumerate() {
        if targets.contains(&(i + 1)) {
            if !done {
                out.push_str(&format!("{keyword} {value}\n"));
                done = true;
            }
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !done && add {
        out.push_str(&format!("{keyword} {value}\n"));
    }
    out
}

/// `text` with its control socket at `path`: the `control` line's user
/// (its last word) is kept, `root` if there was no line.
pub fn with_control(text: &str, path: &str) -> String {
    let user = find(text, "control")
        .and_then(|(_, v)| v.rsplit(' ').next())
        .filter(|u| !u.is_empty())
        .unwrap_or("root")
        .to_owned();
    set(text, "control", &format!("{path} {user}"), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_follow_the_lexical_rules() {
        let text = "# c\n\n  mode tunnel\n\tinstance  a1 \nspi\n";
        let got: Vec<_> = lines(text).collect();
        assert_eq!(
            got,
            vec![(3, "mode", "tunnel"), (4, "instance", "a1"), (5, "spi", "")]
        );
        assert_eq!(find(text, "instance"), Some((4, "a1")));
        assert_eq!(find(text, "peer"), None);
    }

    #[test]
    fn set_replaces_in_place_and_drops_repeats() {
        let text = "mode tunnel\nkek /a\nsecret /b\nkek /c\n";
        assert_eq!(
            set(text, "kek", "/k", false),
            "mode tunnel\nkek /k\nsecret /b\n"
        );
        assert_eq!(set(text, "peer", "1.2.3.4:1", false), text);
        assert_eq!(
            set("mode tunnel", "peer", "auto", true),
            "mode tunnel\npeer auto\n"
        );
        // A `#` line that mentions the keyword is not a setting.
        assert_eq!(set("# kek /x\n", "kek", "/k", false), "# kek /x\n");
    }

    #[test]
    fn control_keeps_its_user() {
        assert_eq!(
            with_control("control /tmp/x _ctl\nmode tunnel\n", "/run/p.control"),
            "control /run/p.control _ctl\nmode tunnel\n"
        );
        assert_eq!(
            with_control("mode tunnel\n", "/run/p.control"),
            "mode tunnel\ncontrol /run/p.control root\n"
        );
    }
}
