//! Short texts for headers and logs. A reason quotes the offending value of an
//! input, and an input can carry a 200 KB string where an id belongs: quoted
//! whole, it would make the dead letter itself too large for the broker's
//! frame, and the broker would close the connection instead of taking it.

/// The longest run of a quoted value kept in a reason.
pub const MAX_QUOTED_BYTES: usize = 200;
/// The longest `x-switchboard-error` header.
pub const MAX_REASON_BYTES: usize = 1024;
/// The longest AMQP short string (a routing key, a queue name).
pub const MAX_SHORT_BYTES: usize = 255;

/// `text` cut to at most `max` bytes on a character boundary, ending in `…` when cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let ellipsis = '…';
    let mut end = max.saturating_sub(ellipsis.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = String::with_capacity(end + ellipsis.len_utf8());
    out.push_str(&text[..end]);
    out.push(ellipsis);
    out
}

/// Cuts every long quoted value of a message to [`MAX_QUOTED_BYTES`]. Serde's
/// messages and ours quote values between `"` or `` ` ``, and the prose between
/// quotes is short, so any long run is an offending value.
pub fn clip_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_REASON_BYTES));
    let mut from = 0;
    for (at, quote) in text.match_indices(['"', '`']) {
        out.push_str(&clip(&text[from..at], MAX_QUOTED_BYTES));
        out.push_str(quote);
        from = at + quote.len();
    }
    out.push_str(&clip(&text[from..], MAX_QUOTED_BYTES));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_cuts_on_a_char_boundary() {
        let cases: [(&str, usize, &str); 5] = [
            ("short", 10, "short"),
            ("exactly10!", 10, "exactly10!"),
            ("abcdefghijk", 10, "abcdefg…"),
            // 'é' is 2 bytes: the cut never lands inside it.
            ("éééééé", 8, "éé…"),
            ("ab", 0, "…"),
        ];
        for (text, max, want) in cases {
            let got = clip(text, max);
            assert_eq!(got, want, "clip({text:?}, {max})");
            assert!(got.len() <= max.max('…'.len_utf8()), "{got:?}");
        }
    }

    #[test]
    fn clip_quoted_cuts_each_long_value_and_keeps_the_prose() {
        let long = "x".repeat(200_000);
        let cases = [
            (
                format!("unknown event type {long:?}"),
                "unknown event type \"",
            ),
            (
                format!("unknown variant `{long}`, expected one of `whatsapp`"),
                "unknown variant `",
            ),
        ];
        for (text, head) in cases {
            let got = clip_quoted(&text);
            assert!(got.starts_with(head), "{got:.80}");
            assert!(got.len() < 2 * MAX_QUOTED_BYTES + 100, "{}", got.len());
            assert!(got.contains('…'));
        }
        let tail = clip_quoted(&format!(
            "unknown variant `{long}`, expected one of `whatsapp`"
        ));
        assert!(
            tail.ends_with("`, expected one of `whatsapp`"),
            "{tail:.80}"
        );
        assert_eq!(clip_quoted("id \"a\" is empty"), "id \"a\" is empty");
    }
}
