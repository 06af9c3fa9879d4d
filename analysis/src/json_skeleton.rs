//! The judge's input with its metrics' sample arrays cut out, for a parse that reads each
//! array once: a light structural pass finds `metrics[i].control` and `metrics[i].experiment`
//! arrays (up to their first `]`), [`crate::json_samples::read_array`] reads each of them
//! while checking its JSON grammar (large inputs on two threads), and what is left (the
//! skeleton, with `[]` in their place) is small enough for serde_json to validate and
//! deserialize in no time. Without this, serde_json scans the arrays once to validate them
//! and the reader a second time to read them.
//!
//! The skeleton is an optimisation only: `input` parses it first and, on any error at all
//! (an array the reader declines included), parses the whole text the general way, so every
//! error message (with its line and column) is the one the general path gives.
//! Correctness rests on one fact: each cut is a complete JSON array standing where a value
//! stands, so the skeleton is valid JSON of the same shape exactly when the text is.
//! Reads the text; touches nothing else.

use std::ops::Range;

/// The text with the metrics' sample arrays it could read replaced by `[]`.
#[derive(Debug)]
pub(crate) struct Skeleton {
    pub(crate) text: String,
    pub(crate) cuts: Cuts,
}

/// The arrays cut out of a skeleton, in text order.
#[derive(Debug)]
pub(crate) struct Cuts(Vec<Cut>);

#[derive(Debug)]
struct Cut {
    /// Where the `[]` stands in the skeleton.
    at: usize,
    /// Where the array stood in the original text.
    span: Range<usize>,
    values: Option<Vec<f64>>,
}

/// A metric side as the skeleton gives it back.
#[derive(Debug)]
pub(crate) enum Side<'t> {
    /// A cut array: its original text and values.
    Cut(&'t str, Vec<f64>),
    /// Text the skeleton kept as it was.
    Kept,
}

impl Cuts {
    /// The side whose text is `raw`, a slice of the `skeleton` text that serde_json handed
    /// out: the cut array of `original` that stood there, or `Kept`. `None` when `raw` is not
    /// a slice of the skeleton, holds a cut inside it, or its cut was already taken.
    pub(crate) fn side<'t>(
        &mut self,
        skeleton: &str,
        original: &'t str,
        raw: &str,
    ) -> Option<Side<'t>> {
        let start = (raw.as_ptr() as usize).checked_sub(skeleton.as_ptr() as usize)?;
        let end = start.checked_add(raw.len())?;
        if end > skeleton.len() {
            return None;
        }
        let first = self.0.partition_point(|c| c.at < start);
        match self.0.get_mut(first) {
            Some(cut) if cut.at == start && raw == "[]" => {
                let values = cut.values.take()?;
                Some(Side::Cut(original.get(cut.span.clone())?, values))
            }
            Some(cut) if cut.at < end => None,
            _ => Some(Side::Kept),
        }
    }

    /// Whether anything was cut.
    pub(crate) fn any(&self) -> bool {
        !self.0.is_empty()
    }
}

/// The skeleton of a judge input: a JSON object whose `metrics` member is an array of
/// objects. `None` when the text does not start that way or the pass meets anything it does
/// not expect (the general parse then reports what is wrong).
pub(crate) fn cut(text: &str) -> Option<Skeleton> {
    let mut scan = Scan {
        bytes: text.as_bytes(),
        i: 0,
        spans: Vec::new(),
    };
    scan.object(|scan, key| {
        if key == b"metrics" && scan.peek() == Some(b'[') {
            scan.array(|scan| {
                if scan.peek() == Some(b'{') {
                    scan.object(|scan, key| {
                        if matches!(key, b"control" | b"experiment") && scan.peek() == Some(b'[') {
                            scan.sample()
                        } else {
                            scan.skip_value()
                        }
                    })
                } else {
                    scan.skip_value()
                }
            })
        } else {
            scan.skip_value()
        }
    })?;
    let values = read_all(text, &scan.spans)?;
    Some(build(text, scan.spans.into_iter().zip(values).collect()))
}

/// Sample arrays of all metrics together at least this long (in bytes of JSON) are read on
/// two threads; below it a thread costs more than it saves.
const PARALLEL_BYTES: usize = 256 * 1024;

/// Each span's values, read by [`crate::json_samples::read_array`], which must end exactly
/// at the span's end; `None` if any is declined. Large inputs are split between two threads
/// by size.
fn read_all(text: &str, spans: &[Range<usize>]) -> Option<Vec<Vec<f64>>> {
    let read = |span: &Range<usize>| {
        let (values, end) = crate::json_samples::read_array(text, span.start)?;
        (end == span.end).then_some(values)
    };
    crate::parallel::map_split(spans, Range::len, PARALLEL_BYTES, read)
        .into_iter()
        .collect()
}

fn build(text: &str, spans: Vec<(Range<usize>, Vec<f64>)>) -> Skeleton {
    let removed: usize = spans.iter().map(|(span, _)| span.len()).sum();
    let mut skeleton = String::with_capacity(text.len() - removed + 2 * spans.len());
    let mut cuts = Vec::with_capacity(spans.len());
    let mut from = 0;
    for (span, values) in spans {
        skeleton.push_str(&text[from..span.start]);
        cuts.push(Cut {
            at: skeleton.len(),
            span: span.clone(),
            values: Some(values),
        });
        skeleton.push_str("[]");
        from = span.end;
    }
    skeleton.push_str(&text[from..]);
    Skeleton {
        text: skeleton,
        cuts: Cuts(cuts),
    }
}

/// The position of the first `]` in `bytes`. `<[u8]>::contains` compares a machine word at
/// a time, so whole blocks without one are passed over quickly.
fn first_close(bytes: &[u8]) -> Option<usize> {
    const BLOCK: usize = 64;
    let block = bytes.chunks(BLOCK).position(|b| b.contains(&b']'))?;
    let offset = block * BLOCK;
    Some(offset + bytes[offset..].iter().position(|&b| b == b']')?)
}

/// The structural pass: positions only, no values.
struct Scan<'t> {
    bytes: &'t [u8],
    i: usize,
    /// Where the sample arrays stand, in text order.
    spans: Vec<Range<usize>>,
}

impl<'t> Scan<'t> {
    fn space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.i) {
            self.i += 1;
        }
    }

    /// The next byte after whitespace.
    fn peek(&mut self) -> Option<u8> {
        self.space();
        self.bytes.get(self.i).copied()
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.i += 1)
    }

    /// An object, calling `member` with each key's raw bytes (escapes not decoded: a key
    /// written with escapes is simply not recognised) before its value.
    fn object(&mut self, mut member: impl FnMut(&mut Self, &[u8]) -> Option<()>) -> Option<()> {
        self.expect(b'{')?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            let key = self.string()?;
            self.expect(b':')?;
            member(self, key)?;
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// An array, calling `element` for each element.
    fn array(&mut self, mut element: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.expect(b'[')?;
        if self.peek()? == b']' {
            self.i += 1;
            return Some(());
        }
        loop {
            element(self)?;
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A string's raw contents; the position moves past its closing quote.
    fn string(&mut self) -> Option<&'t [u8]> {
        self.expect(b'"')?;
        let start = self.i;
        loop {
            match self.bytes.get(self.i)? {
                b'"' => break,
                b'\\' => self.i += 2,
                _ => self.i += 1,
            }
        }
        self.i += 1;
        self.bytes.get(start..self.i - 1)
    }

    /// A sample array, recorded up to its first `]`: its end if it holds only numbers and the
    /// words the reader knows (no nested value, no other string), which reading it checks.
    fn sample(&mut self) -> Option<()> {
        let start = self.i;
        let end = start + first_close(self.bytes.get(start..)?)? + 1;
        self.spans.push(start..end);
        self.i = end;
        Some(())
    }

    /// Any value, by its extent only: strings and nesting are followed so that a bracket in
    /// a string is not taken for structure; what a value holds is serde_json's to check.
    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.bytes.get(self.i)? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
            }
            _ => {
                // A number or a literal: up to the next delimiter.
                let start = self.i;
                while let Some(b) = self.bytes.get(self.i) {
                    if matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                        break;
                    }
                    self.i += 1;
                }
                (self.i > start).then_some(())
            }
        }
    }
}
