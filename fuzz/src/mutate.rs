//! Input mutations: byte-level (flips, inserts, deletes, splices) and JSON-aware (type swaps,
//! huge numbers, long strings, deep nesting, invalid UTF-8, duplicate keys, cross-over).
use serde_json::{Map, Value};

use crate::rng::Rng;

/// How a target's inputs are shaped, which decides the mutations that make sense for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// JSON documents: JSON-aware mutations half of the time.
    Json,
    /// Text (TOML, CSV, tokens): byte-level mutations and text tokens.
    Text,
    /// Binary (protobuf): byte-level mutations and varint tokens.
    Binary,
}

/// Values that break decoders: wrong types, extreme numbers, odd strings and dates.
fn strange_value(rng: &mut Rng) -> Value {
    let long = |unit: &str, rng: &mut Rng| unit.repeat([10, 1_000, 70_000][rng.below(3)]);
    match rng.below(34) {
        0 => Value::Null,
        1 => Value::Bool(rng.one_in(2)),
        2 => Value::from(0),
        3 => Value::from(-1),
        4 => Value::from(u64::MAX),
        5 => Value::from(i64::MIN),
        6 => Value::from(1.5),
        7 => Value::from(-0.0),
        8 => Value::from(1e308),
        9 => Value::from(""),
        10 => Value::from(long("a", rng)),
        11 => Value::from(long("é\u{202e}\u{200b}", rng)),
        12 => Value::from("line\nbreak\r\u{1b}[31m\u{0}\u{7f}"),
        13 => Value::Array(Vec::new()),
        14 => Value::Object(Map::new()),
        15 => Value::Array(vec![Value::Null]),
        16 => Value::from("2020-02-30T00:00:00Z"),
        17 => Value::from("+275760-09-13T00:00:00Z"),
        18 => Value::from("9999-12-31T23:59:59.999999999Z"),
        19 => Value::from("1970-01-01T00:00:00-23:59"),
        20 => Value::from("2020-01-01"),
        21 => Value::from(i64::MAX),
        22 => Value::from(u32::MAX),
        23 => Value::from(4_294_967_296_u64),
        24 => Value::from(f64::MIN_POSITIVE),
        25 => Value::from(-1e308),
        26 => Value::from("-262144-01-01T00:00:00Z"),
        27 => Value::from("2016-12-31T23:59:60Z"),
        28 => Value::from(long("\\u0000", rng)),
        29 => Value::from("0"),
        30 => Value::from(" "),
        31 => Value::from("null"),
        _ => Value::from(*rng.pick(WORDS).unwrap_or(&"open")),
    }
}

/// Words the Zendesk payloads give meaning to.
const WORDS: &[&str] = &[
    "new",
    "open",
    "pending",
    "hold",
    "solved",
    "closed",
    "deleted",
    "low",
    "normal",
    "high",
    "urgent",
    "good",
    "bad",
    "bad_with_comment",
    "good_with_comment",
    "offered",
    "unoffered",
    "Change",
    "Create",
    "Audit",
    "Comment",
    "status",
    "priority",
    "-",
    "OPEN",
    "Urgent",
];

/// Raw tokens spliced into text: numbers serde cannot hold, escapes, structure.
const JSON_TOKENS: &[&str] = &[
    "null",
    "true",
    "false",
    "{}",
    "[]",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "\"",
    "\\",
    "\\u",
    "\\ud800",
    "\\udc00\\ud800",
    "\\u0000",
    "18446744073709551616",
    "-9223372036854775809",
    "1e999",
    "-1e-999",
    "1E400",
    "0.0000000000000000000000001",
    "NaN",
    "Infinity",
    "-",
    "01",
    "1.",
    "-0",
    "9007199254740993",
    "4294967296",
    "-2147483649",
    "\"\"",
    "\u{feff}",
    " \t\r\n",
];

/// Byte sequences that are not UTF-8.
const BAD_UTF8: &[&[u8]] = &[
    b"\xff",
    b"\xfe\xff",
    b"\xc0\x80",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xc3",
    b"\xe2\x82",
    b"\x80",
];

/// Tokens that matter to protobuf: varints (overlong, maximal), tags, lengths.
const PROTO_TOKENS: &[&[u8]] = &[
    b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
    b"\xff\xff\xff\xff\x0f",
    b"\x0a\xff\xff\xff\xff\x0f",
    b"\x0a\x00",
    b"\x08\x00",
    b"\x12\x02\xc3\x28",
    b"\x0f",
    b"\x0b",
    b"\x0c",
    b"\x00",
    b"\x7a\x00",
    b"\x78\x01",
];

/// Produces new inputs from a corpus.
#[derive(Debug, Clone)]
pub struct Mutator {
    /// Inputs longer than this are cut.
    pub max_len: usize,
    /// Tokens for this target: harvested JSON keys plus the target's own words.
    dictionary: Vec<Vec<u8>>,
    kind: InputKind,
}

impl Mutator {
    /// A mutator for inputs of `kind`, with `dictionary` tokens (keys, words) for splicing.
    pub fn new(kind: InputKind, max_len: usize, mut dictionary: Vec<Vec<u8>>) -> Self {
        match kind {
            InputKind::Json | InputKind::Text => {
                dictionary.extend(JSON_TOKENS.iter().map(|t| t.as_bytes().to_vec()));
            }
            InputKind::Binary => dictionary.extend(PROTO_TOKENS.iter().map(|t| t.to_vec())),
        }
        dictionary.extend(BAD_UTF8.iter().map(|t| t.to_vec()));
        dictionary.sort();
        dictionary.dedup();
        Self {
            max_len,
            dictionary,
            kind,
        }
    }

    /// A new input: `base` mutated one to four times, with `others` for splicing and cross-over.
    pub fn mutate(&self, rng: &mut Rng, base: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
        let mut data = base.to_vec();
        let rounds = 1 + rng.below(4);
        for _ in 0..rounds {
            let json_round = self.kind == InputKind::Json && rng.one_in(2);
            if !(json_round && self.json_mutation(rng, &mut data, others)) {
                self.byte_mutation(rng, &mut data, others);
            }
        }
        data.truncate(self.max_len);
        data
    }

    fn token(&self, rng: &mut Rng) -> Vec<u8> {
        rng.pick(&self.dictionary).cloned().unwrap_or_default()
    }

    fn byte_mutation(&self, rng: &mut Rng, data: &mut Vec<u8>, others: &[Vec<u8>]) {
        let len = data.len();
        match rng.below(15) {
            0 if len > 0 => {
                let at = rng.below(len);
                data[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                data[at] = *rng
                    .pick(&[
                        0u8, 0xff, 0x7f, 0x80, b'"', b'{', b'[', b'\\', b'\n', b',', b'0',
                    ])
                    .unwrap_or(&0);
            }
            2 => {
                let at = rng.below(len + 1);
                let count = rng.small_len(64);
                let bytes: Vec<u8> = (0..count).map(|_| rng.byte()).collect();
                data.splice(at..at, bytes);
            }
            3 if len > 0 => {
                let at = rng.below(len);
                let count = rng.small_len(len - at);
                data.drain(at..(at + count).min(len));
            }
            4 if len > 0 => {
                // Copy a chunk elsewhere.
                let from = rng.below(len);
                let count = rng.small_len(len - from);
                let chunk = data[from..(from + count).min(len)].to_vec();
                let at = rng.below(len + 1);
                data.splice(at..at, chunk);
            }
            5 | 6 => {
                let at = rng.below(len + 1);
                let token = self.token(rng);
                data.splice(at..at, token);
            }
            7 if len > 0 => {
                let at = rng.below(len);
                let token = self.token(rng);
                let end = (at + token.len()).min(len);
                data.splice(at..end, token);
            }
            8 => {
                // Splice: a prefix of this input and a suffix of another.
                if let Some(other) = rng.pick(others) {
                    let cut = rng.below(len + 1);
                    let from = rng.below(other.len() + 1);
                    data.truncate(cut);
                    data.extend_from_slice(&other[from..]);
                }
            }
            9 if len > 0 => {
                data.truncate(rng.below(len));
            }
            10 => replace_number(rng, data),
            11 if len > 0 => {
                // A long run: the same chunk repeated up to a large size.
                let from = rng.below(len);
                let count = 1 + rng.small_len(8.min(len - from));
                let chunk = data[from..(from + count).min(len)].to_vec();
                let times = match rng.below(8) {
                    0 => 50_000,
                    1 | 2 => 1_000,
                    _ => 16,
                };
                let mut run = Vec::with_capacity(chunk.len() * times);
                for _ in 0..times {
                    run.extend_from_slice(&chunk);
                    if run.len() > self.max_len / 4 {
                        break;
                    }
                }
                data.splice(from..from, run);
            }
            12 => {
                // Deep nesting, raw: many opening brackets (and sometimes their closings).
                let at = rng.below(len + 1);
                let depth = [64, 127, 128, 129, 1_000, 100_000][rng.below(6).min(rng.below(6))];
                let open = if rng.one_in(2) { b'[' } else { b'{' };
                let mut run = vec![open; depth];
                if open == b'[' && rng.one_in(2) {
                    run.extend(std::iter::repeat_n(b']', depth));
                }
                data.splice(at..at, run);
            }
            13 if len > 1 => {
                let a = rng.below(len);
                let b = rng.below(len);
                data.swap(a, b);
            }
            _ => {
                let at = rng.below(len + 1);
                let bad = rng.pick(BAD_UTF8).copied().unwrap_or(b"\xff");
                data.splice(at..at, bad.iter().copied());
            }
        }
    }

    /// One JSON-aware change; false when `data` is not JSON (the caller then mutates bytes).
    fn json_mutation(&self, rng: &mut Rng, data: &mut Vec<u8>, others: &[Vec<u8>]) -> bool {
        let Ok(mut root) = serde_json::from_slice::<Value>(data) else {
            return false;
        };
        let choice = rng.below(10);
        if choice == 9 {
            // Text-level edits of a valid document: duplicate keys, raw tokens after a key.
            return self.key_injection(rng, data);
        }
        {
            let Some(node) = random_node(rng, &mut root, 0) else {
                return false;
            };
            match choice {
                0..=2 => *node = strange_value(rng),
                3 => {
                    // Cross-over: a node from another corpus entry.
                    let donor = rng
                        .pick(others)
                        .and_then(|other| serde_json::from_slice::<Value>(other).ok());
                    if let Some(mut donor) = donor {
                        if let Some(part) = random_node(rng, &mut donor, 0) {
                            *node = part.take();
                        }
                    }
                }
                4 => match node {
                    Value::Array(items) if !items.is_empty() => {
                        let at = rng.below(items.len());
                        match rng.below(3) {
                            0 => {
                                items.remove(at);
                            }
                            1 => items.truncate(at),
                            _ => {
                                let copy = items[at].clone();
                                items.insert(at, copy);
                            }
                        }
                    }
                    Value::Object(map) if !map.is_empty() => {
                        let at = rng.below(map.len());
                        if let Some(key) = map.keys().nth(at).cloned() {
                            map.remove(&key);
                        }
                    }
                    other => *other = Value::Null,
                },
                5 => {
                    // Deep nesting around a value.
                    let depth = [8, 126, 127, 128, 129, 300][rng.below(6)];
                    let mut value = node.take();
                    for _ in 0..depth {
                        value = if rng.one_in(2) {
                            Value::Array(vec![value])
                        } else {
                            let mut map = Map::new();
                            map.insert("id".to_owned(), value);
                            Value::Object(map)
                        };
                    }
                    *node = value;
                }
                6 => {
                    if let Value::Object(map) = node {
                        let key = self.key_name(rng);
                        map.insert(key, strange_value(rng));
                    } else {
                        *node = strange_value(rng);
                    }
                }
                7 => {
                    // A value of another type built from the same content.
                    let replacement = match node.take() {
                        Value::String(text) => match text.parse::<f64>() {
                            Ok(number) => Value::from(number),
                            Err(_) => Value::Array(vec![Value::String(text)]),
                        },
                        Value::Number(number) => Value::String(number.to_string()),
                        Value::Array(mut items) => items.pop().unwrap_or(Value::Null),
                        Value::Object(map) => {
                            Value::Array(map.into_iter().map(|(_, v)| v).collect())
                        }
                        Value::Bool(flag) => Value::from(u8::from(flag)),
                        Value::Null => Value::from("null"),
                    };
                    *node = replacement;
                }
                _ => {
                    if let Value::Array(items) = node {
                        // Many copies of one record.
                        if let Some(first) = items.first().cloned() {
                            let copies = [10, 200][rng.below(2)];
                            items.extend(std::iter::repeat_n(first, copies));
                        }
                    } else {
                        *node = strange_value(rng);
                    }
                }
            }
        }
        let encoded = if rng.one_in(4) {
            serde_json::to_vec_pretty(&root)
        } else {
            serde_json::to_vec(&root)
        };
        match encoded {
            Ok(bytes) => {
                *data = bytes;
                true
            }
            Err(_) => false,
        }
    }

    fn key_name(&self, rng: &mut Rng) -> String {
        let keys: Vec<&Vec<u8>> = self
            .dictionary
            .iter()
            .filter(|t| t.len() > 2 && t.starts_with(b"\"") && t.ends_with(b"\""))
            .collect();
        rng.pick(&keys)
            .and_then(|k| std::str::from_utf8(&k[1..k.len() - 1]).ok())
            .unwrap_or("id")
            .to_owned()
    }

    /// Inserts `"key": <raw token>,` right after a random `{`: duplicate keys, numbers out of range.
    fn key_injection(&self, rng: &mut Rng, data: &mut Vec<u8>) -> bool {
        let opens: Vec<usize> = data
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'{')
            .map(|(i, _)| i)
            .collect();
        let Some(&at) = rng.pick(&opens) else {
            return false;
        };
        let raw: &[u8] = match rng.below(6) {
            0 => b"18446744073709551616",
            1 => b"-1",
            2 => b"1e999",
            3 => b"\"\\ud800\"",
            4 => b"null",
            _ => b"\"x\"",
        };
        let mut text = format!("\"{}\":", self.key_name(rng)).into_bytes();
        text.extend_from_slice(raw);
        text.push(b',');
        data.splice(at + 1..at + 1, text);
        true
    }
}

/// A random node of `value`: the root or something below it.
fn random_node<'a>(rng: &mut Rng, value: &'a mut Value, depth: usize) -> Option<&'a mut Value> {
    let len = match &*value {
        Value::Array(items) => items.len(),
        Value::Object(map) => map.len(),
        _ => 0,
    };
    if len == 0 || (depth > 0 && rng.one_in(3)) {
        return Some(value);
    }
    let at = rng.below(len);
    match value {
        Value::Array(items) => random_node(rng, items.get_mut(at)?, depth + 1),
        Value::Object(map) => random_node(rng, map.values_mut().nth(at)?, depth + 1),
        other => Some(other),
    }
}

/// Replaces a run of digits with a number no integer type holds (or another odd number).
fn replace_number(rng: &mut Rng, data: &mut Vec<u8>) {
    let starts: Vec<usize> = data
        .iter()
        .enumerate()
        .filter(|(i, b)| b.is_ascii_digit() && (*i == 0 || !data[i - 1].is_ascii_digit()))
        .map(|(i, _)| i)
        .collect();
    let Some(&start) = rng.pick(&starts) else {
        return;
    };
    let end = data[start..]
        .iter()
        .position(|b| !b.is_ascii_digit())
        .map_or(data.len(), |p| start + p);
    let replacement: &[u8] = match rng.below(9) {
        0 => b"18446744073709551616",
        1 => b"18446744073709551615",
        2 => b"9223372036854775808",
        3 => b"99999999999999999999999999999999999999",
        4 => b"1e999",
        5 => b"0",
        6 => b"4294967296",
        7 => b"2147483648",
        _ => b"1.0",
    };
    data.splice(start..end, replacement.iter().copied());
}

/// Every object key in `value`, as `"key"` tokens.
pub fn harvest_keys(value: &Value, into: &mut Vec<Vec<u8>>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if key.len() <= 64 {
                    into.push(format!("\"{key}\"").into_bytes());
                }
                harvest_keys(child, into);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| harvest_keys(item, into)),
        _ => {}
    }
}

/// A smaller copy: every array cut to its first `keep` elements.
pub fn shrink_arrays(value: &Value, keep: usize) -> Value {
    match value {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .take(keep)
                .map(|item| shrink_arrays(item, keep))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), shrink_arrays(v, keep)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_stay_within_max_len_and_change_input() {
        let mutator = Mutator::new(InputKind::Json, 4096, vec![b"\"status\"".to_vec()]);
        let mut rng = Rng::new(1);
        let base = br#"{"tickets":[{"id":1,"status":"open"}],"end_of_stream":true}"#;
        let mut changed = 0;
        for _ in 0..2000 {
            let out = mutator.mutate(&mut rng, base, &[base.to_vec()]);
            assert!(out.len() <= 4096);
            changed += usize::from(out != base);
        }
        assert!(changed > 1500, "{changed}");
    }

    #[test]
    fn shrink_keeps_shape() {
        let value: Value = serde_json::json!({"a": [1, 2, 3, [4, 5, 6]]});
        assert_eq!(shrink_arrays(&value, 2), serde_json::json!({"a": [1, 2]}));
    }
}
