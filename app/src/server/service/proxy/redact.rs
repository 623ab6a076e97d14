//! Replaces every form of the secret an upstream echoes with `[redacted]`, in a stream: a
//! match split across chunks is still found, because the last `longest needle - 1` bytes of
//! each chunk are held back until the next one (or the end) shows whether they start a match.

/// What replaces an echoed secret.
pub const MARK: &[u8] = b"[redacted]";

/// A streaming redactor over a fixed set of needles.
pub struct Redactor {
    needles: Vec<Vec<u8>>,
    longest: usize,
    held: Vec<u8>,
    hits: usize,
}

impl Redactor {
    pub fn new(mut needles: Vec<Vec<u8>>) -> Self {
        needles.retain(|n| !n.is_empty());
        // Longest first, so that a secret containing another needle is replaced whole.
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        let longest = needles.first().map_or(0, Vec::len);
        Redactor {
            needles,
            longest,
            held: Vec::new(),
            hits: 0,
        }
    }

    /// How many echoes were replaced so far.
    pub fn hits(&self) -> usize {
        self.hits
    }

    /// Takes the next chunk; returns what can safely be sent now.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        if self.longest == 0 {
            return chunk.to_vec();
        }
        self.held.extend_from_slice(chunk);
        let (out, consumed) = self.scan(false);
        self.held.drain(..consumed);
        out
    }

    /// The end of the stream: everything still held, redacted.
    pub fn finish(&mut self) -> Vec<u8> {
        let (out, _) = self.scan(true);
        self.held.clear();
        out
    }

    /// Redacts a whole value at once (a header), counting hits.
    pub fn whole(&mut self, value: &[u8]) -> Vec<u8> {
        let mut one = Redactor::new(self.needles.clone());
        let mut out = one.push(value);
        out.extend(one.finish());
        self.hits += one.hits;
        out
    }

    /// Replaces every complete match in `held`; returns the output and how many bytes of
    /// `held` it covers. Unless `end`, bytes that could start a match are kept back: a match
    /// starting before `len - (longest - 1)` ends inside `held`, so it has been seen whole.
    fn scan(&mut self, end: bool) -> (Vec<u8>, usize) {
        let held = &self.held;
        let mut out = Vec::with_capacity(held.len());
        let mut i = 0;
        while let Some((at, len)) = self.find(&held[i..]) {
            out.extend_from_slice(&held[i..i + at]);
            out.extend_from_slice(MARK);
            self.hits += 1;
            i += at + len;
        }
        let safe = if end {
            held.len()
        } else {
            held.len().saturating_sub(self.longest - 1).max(i)
        };
        out.extend_from_slice(&held[i..safe]);
        (out, safe)
    }

    /// The first complete match in `hay`: (offset, length).
    fn find(&self, hay: &[u8]) -> Option<(usize, usize)> {
        let mut best: Option<(usize, usize)> = None;
        for needle in &self.needles {
            if let Some(at) = memchr::memmem::find(hay, needle)
                && best.is_none_or(|(b, _)| at < b)
            {
                best = Some((at, needle.len()));
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(needles: &[&str], chunks: &[&str]) -> (String, usize) {
        let mut r = Redactor::new(needles.iter().map(|n| n.as_bytes().to_vec()).collect());
        let mut out = Vec::new();
        for c in chunks {
            out.extend(r.push(c.as_bytes()));
        }
        out.extend(r.finish());
        (String::from_utf8(out).expect("test step"), r.hits())
    }

    #[test]
    fn echoes_are_replaced_across_chunk_boundaries() {
        assert_eq!(
            run(&["s3cret"], &["a s3cret b"]),
            ("a [redacted] b".into(), 1)
        );
        assert_eq!(
            run(&["s3cret"], &["a s3", "cr", "et b s3cret"]),
            ("a [redacted] b [redacted]".into(), 2)
        );
        for split in 0..=12 {
            let body = "xx s3cret yy";
            let (a, b) = body.split_at(split);
            assert_eq!(
                run(&["s3cret"], &[a, b]).0,
                "xx [redacted] yy",
                "split {split}"
            );
        }
        assert_eq!(run(&["s3cret"], &["s3c", "ret"]), ("[redacted]".into(), 1));
        assert_eq!(run(&["s3cret"], &["s3c"]), ("s3c".into(), 0));
        assert_eq!(run(&[], &["abc"]), ("abc".into(), 0));
    }

    #[test]
    fn the_longest_form_wins_and_overlaps_are_found() {
        assert_eq!(
            run(&["user:pass", "pass"], &["<user:pass> <pass>"]).0,
            "<[redacted]> <[redacted]>"
        );
        assert_eq!(run(&["aa"], &["aaa"]).0, "[redacted]a");
        let mut r = Redactor::new(vec![b"tok".to_vec()]);
        assert_eq!(r.whole(b"Bearer tok"), b"Bearer [redacted]");
        assert_eq!(r.hits(), 1);
    }
}
