//! Texts of a round-robin turn's variants, sent once: the variants of a plan
//! differ only where the manager shows (his id, his notification's id), so
//! each variant's text (its commands, its record) goes to `apply.lua` as the
//! pieces all variants share and the slots each fills in, marked in one text
//! ([`marked`]). The message text sits in a shared piece, so it goes once
//! however many managers there are.
//!
//! A turn whose variants differ only by the manager is one template: its
//! pieces come from two fills of it ([`holes`]). Otherwise each variant is
//! written out and their texts are compared ([`factor`]).

/// One piece of a factored text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Piece {
    /// The same in every variant.
    Shared(String),
    /// Filled in by each variant: the index in its slots.
    Slot(usize),
}

/// Variants' texts as shared pieces and what each variant fills in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Factored {
    pub pieces: Vec<Piece>,
    /// For each variant, the text of each slot.
    pub slots: Vec<Vec<String>>,
}

/// Pieces as one text for `apply.lua`, each slot marked as `\u{1}` `n`
/// `\u{2}`, `n` its number counted from `first`. A shared piece holds no
/// control character (JSON escapes them, an id has none), so no mark is
/// ambiguous.
pub(super) fn marked(pieces: &[Piece], first: usize) -> String {
    let len = pieces
        .iter()
        .map(|piece| match piece {
            Piece::Shared(text) => text.len(),
            Piece::Slot(_) => 4,
        })
        .sum();
    let mut out = String::with_capacity(len);
    for piece in pieces {
        match piece {
            Piece::Shared(text) => {
                debug_assert!(!text.contains(['\u{1}', '\u{2}']), "{text:?}");
                out.push_str(text);
            }
            Piece::Slot(k) => {
                out.push('\u{1}');
                out.push_str(&(k + first).to_string());
                out.push('\u{2}');
            }
        }
    }
    out
}

/// A marked text ([`marked`]) with its slots filled, as `apply.lua` fills it.
#[cfg(test)]
pub(super) fn fill_marked(text: &str, slots: &[String]) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find('\u{1}') {
        let end = start + rest[start..].find('\u{2}').expect("a closed mark");
        out.push_str(&rest[..start]);
        let n: usize = rest[start + 1..end].parse().expect("a slot number");
        out.push_str(&slots[n - 1]);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The pieces of a template's texts, in parts: `a` and `b` are its texts
/// filled in twice, with `marks[k].0` and `marks[k].1` in slot `k`. The marks
/// of a slot are ASCII, equally long and differ at every byte, so the bytes
/// where `a` and `b` differ are exactly the slots, whatever the texts around
/// them hold (a message may quote a mark). `None` if the texts differ
/// anywhere else or their parts do not line up.
pub(super) fn holes(a: &[String], b: &[String], marks: &[(&str, &str)]) -> Option<Vec<Piece>> {
    if a.len() != b.len() {
        return None;
    }
    let mut pieces = Vec::new();
    for (x, y) in a.iter().zip(b) {
        if x == y {
            share(&mut pieces, x);
            continue;
        }
        let (xb, yb) = (x.as_bytes(), y.as_bytes());
        if xb.len() != yb.len() {
            return None;
        }
        let (mut at, mut done) = (0, 0);
        while at < xb.len() {
            if xb[at] == yb[at] {
                at += 1;
                continue;
            }
            let end = (at..xb.len()).find(|&i| xb[i] == yb[i]).unwrap_or(xb.len());
            let k = marks.iter().position(|(ma, mb)| {
                ma.as_bytes() == &xb[at..end] && mb.as_bytes() == &yb[at..end]
            })?;
            // The slot is ASCII, so `at` and `end` are on character boundaries.
            share(&mut pieces, &x[done..at]);
            pieces.push(Piece::Slot(k));
            (at, done) = (end, end);
        }
        share(&mut pieces, &x[done..]);
    }
    Some(pieces)
}

impl Factored {
    /// The text of variant `n`, as `apply.lua` puts it together.
    #[cfg(test)]
    pub fn text(&self, n: usize) -> String {
        put_together(&self.pieces, &self.slots[n])
    }
}

/// A text from its pieces and the texts of its slots, as `apply.lua` fills it.
#[cfg(test)]
pub(super) fn put_together(pieces: &[Piece], slots: &[String]) -> String {
    pieces
        .iter()
        .map(|piece| match piece {
            Piece::Shared(text) => text.as_str(),
            Piece::Slot(k) => slots[*k].as_str(),
        })
        .collect()
}

/// Factors `variants`, each a text in parts (the variant's text is its parts
/// joined). Parts at the same place that are alike in every variant are
/// shared; parts that differ share their common start and end, and the rest
/// is a slot. Variants with different numbers of parts are factored as one
/// part each.
pub(super) fn factor(variants: &[Vec<String>]) -> Factored {
    let mut factored = Factored {
        pieces: Vec::new(),
        slots: vec![Vec::new(); variants.len()],
    };
    let Some(first) = variants.first() else {
        return factored;
    };
    let joined;
    let variants: &[Vec<String>] = if variants.iter().all(|v| v.len() == first.len()) {
        variants
    } else {
        joined = variants
            .iter()
            .map(|v| vec![v.concat()])
            .collect::<Vec<_>>();
        &joined
    };
    for at in 0..variants[0].len() {
        let texts: Vec<&str> = variants.iter().map(|v| v[at].as_str()).collect();
        if texts.iter().all(|t| *t == texts[0]) {
            share(&mut factored.pieces, texts[0]);
            continue;
        }
        let start = common_start(&texts);
        let end = common_end(&texts, start);
        share(&mut factored.pieces, &texts[0][..start]);
        factored.pieces.push(Piece::Slot(factored.slots[0].len()));
        for (n, text) in texts.iter().enumerate() {
            factored.slots[n].push(text[start..text.len() - end].to_owned());
        }
        share(&mut factored.pieces, &texts[0][texts[0].len() - end..]);
    }
    factored
}

/// Adds `text` to the last shared piece, or as a new one.
fn share(pieces: &mut Vec<Piece>, text: &str) {
    if text.is_empty() {
        return;
    }
    match pieces.last_mut() {
        Some(Piece::Shared(last)) => last.push_str(text),
        _ => pieces.push(Piece::Shared(text.to_owned())),
    }
}

/// Bytes every text starts with, ending on a character boundary.
fn common_start(texts: &[&str]) -> usize {
    let first = texts[0];
    let mut len = texts
        .iter()
        .map(|t| {
            first
                .bytes()
                .zip(t.bytes())
                .take_while(|(a, b)| a == b)
                .count()
        })
        .min()
        .unwrap_or(0);
    while !first.is_char_boundary(len) {
        len -= 1;
    }
    len
}

/// Bytes every text ends with, not reaching into the first `start` bytes of
/// the shortest, starting on a character boundary.
fn common_end(texts: &[&str], start: usize) -> usize {
    let first = texts[0];
    let room = texts.iter().map(|t| t.len()).min().unwrap_or(0) - start;
    let mut len = texts
        .iter()
        .map(|t| {
            first
                .bytes()
                .rev()
                .zip(t.bytes().rev())
                .take_while(|(a, b)| a == b)
                .count()
        })
        .min()
        .unwrap_or(0)
        .min(room);
    while !first.is_char_boundary(first.len() - len) {
        len -= 1;
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(texts: &[&str]) -> Vec<String> {
        texts.iter().map(|t| (*t).to_owned()).collect()
    }

    #[test]
    fn every_variant_is_put_together_again() {
        let table: Vec<Vec<Vec<String>>> = vec![
            vec![
                parts(&["[", "a1,", "same,", "b1", "]"]),
                parts(&["[", "a22,", "same,", "b22", "]"]),
            ],
            vec![parts(&["x"]), parts(&["x", "y"]), parts(&[])],
            vec![parts(&["é1é", "z"]), parts(&["é2é", "z"])],
            vec![parts(&["ab"]), parts(&["abab"])],
            vec![parts(&["aXa"]), parts(&["aa"])],
            vec![parts(&["m1-é"]), parts(&["m1-è"])],
            vec![],
        ];
        for variants in table {
            let factored = factor(&variants);
            for (n, v) in variants.iter().enumerate() {
                assert_eq!(factored.text(n), v.concat(), "{variants:?}");
            }
        }
    }

    #[test]
    fn a_template_has_holes_where_its_marks_were() {
        let marks = [("aaaa", "bbbb"), ("cc", "dd")];
        // Each: a template's parts with `{0}` and `{1}` for its slots, and
        // what the slots are filled with.
        let table: [(&[&str], [&str; 2]); 5] = [
            (
                &["{\"u\":\"{0}\",\"i\":\"{1}\"}", "[\"x\",\"{0}\"]"],
                ["m1", "id-1"],
            ),
            // Text around a slot that quotes or continues a mark.
            (&["aaaa{0}bbbb", "cc{1}dd", "aa"], ["m-10", "x"]),
            (&["{0}", "no slot", "{1}{1}{1}"], ["é", "ü"]),
            (&["é{0}è"], ["q", ""]),
            (&[], ["m", "i"]),
        ];
        for (template, fill) in table {
            let text = |slots: [&str; 2]| -> Vec<String> {
                template
                    .iter()
                    .map(|t| t.replace("{0}", slots[0]).replace("{1}", slots[1]))
                    .collect()
            };
            let pieces = holes(
                &text([marks[0].0, marks[1].0]),
                &text([marks[0].1, marks[1].1]),
                &marks,
            );
            // Adjacent slots cannot be told apart: no template, the caller
            // writes each variant out.
            if template.iter().any(|t| t.contains("{1}{1}")) {
                assert_eq!(pieces, None, "{template:?}");
                continue;
            }
            let pieces = pieces.expect("a template");
            let slots = fill.map(str::to_owned);
            assert_eq!(
                put_together(&pieces, &slots),
                text(fill).concat(),
                "{template:?}"
            );
        }
    }

    #[test]
    fn texts_that_differ_elsewhere_are_no_template() {
        let marks = [("aaaa", "bbbb")];
        let a = parts(&["x aaaa y", "1"]);
        assert_eq!(holes(&a, &parts(&["x bbbb y", "2"]), &marks), None);
        assert_eq!(holes(&a, &parts(&["x bbbb y"]), &marks), None);
        assert_eq!(holes(&a, &parts(&["x bbbbb y", "1"]), &marks), None);
        assert_eq!(holes(&a, &parts(&["x bbba y", "1"]), &marks), None);
        let text = holes(&a, &parts(&["x bbbb y", "1"]), &marks).unwrap();
        assert_eq!(
            text,
            vec![
                Piece::Shared("x ".into()),
                Piece::Slot(0),
                Piece::Shared(" y1".into())
            ]
        );
    }

    #[test]
    fn marked_pieces_fill_as_apply_lua_fills_them() {
        let pieces = [
            Piece::Shared("a\"b\\".into()),
            Piece::Slot(0),
            Piece::Slot(11),
            Piece::Shared("é".into()),
        ];
        let text = marked(&pieces, 1);
        assert_eq!(text, "a\"b\\\u{1}1\u{2}\u{1}12\u{2}é");
        let slots: Vec<String> = (1..=12).map(|n| format!("s{n}")).collect();
        assert_eq!(fill_marked(&text, &slots), put_together(&pieces, &slots));
        assert_eq!(fill_marked("plain", &slots), "plain");
    }

    #[test]
    fn what_all_variants_share_goes_once() {
        let text = "a long message text that must not repeat";
        let variants: Vec<Vec<String>> = ["m1", "m2", "m10"]
            .iter()
            .map(|m| {
                vec![
                    format!("{{\"who\":\"{m}\","),
                    format!("\"text\":\"{text}\"}}"),
                    format!("[{{\"u\":\"{m}\"}}]"),
                ]
            })
            .collect();
        let factored = factor(&variants);
        let shared: String = factored
            .pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Shared(t) => Some(t.as_str()),
                Piece::Slot(_) => None,
            })
            .collect();
        assert_eq!(shared.matches(text).count(), 1);
        assert_eq!(factored.slots[2], vec!["10", "10"]);
        assert!(factored.slots.iter().flatten().all(|s| !s.contains(text)));
    }
}
