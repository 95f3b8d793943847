//! Texts of a round-robin turn's variants, sent once: the variants of a plan
//! differ only where the manager shows (his id, his notification's id), so
//! each variant's text (its commands, its record) goes to `apply.lua` as the
//! pieces all variants share and the slots each fills in. The message text
//! sits in a shared piece, so it goes once however many managers there are.

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

impl Factored {
    /// The pieces as `apply.lua` reads them: a string for a shared piece, the
    /// slot's number (from 1) for a slot.
    pub fn pieces_json(&self) -> Vec<serde_json::Value> {
        self.pieces
            .iter()
            .map(|piece| match piece {
                Piece::Shared(text) => text.as_str().into(),
                Piece::Slot(n) => (n + 1).into(),
            })
            .collect()
    }

    /// The text of variant `n`, as `apply.lua` puts it together.
    #[cfg(test)]
    pub fn text(&self, n: usize) -> String {
        self.pieces
            .iter()
            .map(|piece| match piece {
                Piece::Shared(text) => text.as_str(),
                Piece::Slot(k) => self.slots[n][*k].as_str(),
            })
            .collect()
    }
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
