//! The chat-completions streaming answer: server-sent events whose `data:` lines are JSON
//! chunks (`choices[0].delta.content`) and end with `data: [DONE]`. Anything else is garbage
//! and ends the draft with a sentence saying so.

use serde_json::Value;

/// A line longer than this is not a chat-completions chunk.
const MAX_LINE: usize = 256 * 1024;

/// One thing the stream said.
#[derive(Debug, PartialEq)]
pub enum Piece {
    Text(String),
    Done,
}

/// Splits bytes into lines across chunk boundaries (a UTF-8 character may be cut too).
#[derive(Default)]
pub struct ChatStream {
    buf: Vec<u8>,
}

const GARBAGE: &str = "the model endpoint's answer is not a chat-completions stream";

impl ChatStream {
    /// Feeds received bytes; returns what the complete lines said.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Piece>, String> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=end).collect();
            if let Some(piece) = parse_line(&line[..line.len() - 1])? {
                out.push(piece);
            }
        }
        if self.buf.len() > MAX_LINE {
            return Err(format!("{GARBAGE} (a line over {MAX_LINE} bytes)"));
        }
        Ok(out)
    }

    /// The last line, when the stream ended without a line break.
    pub fn finish(&mut self) -> Result<Option<Piece>, String> {
        let line = std::mem::take(&mut self.buf);
        parse_line(&line)
    }
}

fn parse_line(line: &[u8]) -> Result<Option<Piece>, String> {
    let line = std::str::from_utf8(line).map_err(|_| format!("{GARBAGE} (not UTF-8)"))?;
    let line = line.trim_end_matches('\r');
    if line.is_empty() || line.starts_with(':') {
        return Ok(None);
    }
    let Some(data) = line.strip_prefix("data:") else {
        // Other event fields carry nothing for us.
        if ["event:", "id:", "retry:"]
            .iter()
            .any(|f| line.starts_with(f))
        {
            return Ok(None);
        }
        return Err(format!("{GARBAGE} (got {:?})", excerpt(line)));
    };
    let data = data.trim();
    if data == "[DONE]" {
        return Ok(Some(Piece::Done));
    }
    let chunk: Value = serde_json::from_str(data)
        .map_err(|_| format!("{GARBAGE} (a data line is not JSON: {:?})", excerpt(data)))?;
    if let Some(err) = chunk.get("error") {
        let message = err
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| err.to_string());
        return Err(format!(
            "the model reported an error: {}",
            excerpt(&message)
        ));
    }
    content_of(&chunk)
        .map(|text| (!text.is_empty()).then(|| Piece::Text(text.to_owned())))
        .ok_or_else(|| format!("{GARBAGE} (a chunk without choices)"))
}

/// The text of a streamed chunk (`delta.content`) or of a whole answer (`message.content`);
/// `Some("")` for a chunk that carries no text (the role, a finish reason).
pub fn content_of(chunk: &Value) -> Option<&str> {
    let choice = chunk.get("choices")?.as_array()?.first();
    let Some(choice) = choice else {
        // Some servers send a final usage chunk with no choices.
        return Some("");
    };
    let part = choice.get("delta").or_else(|| choice.get("message"))?;
    Some(part.get("content").and_then(Value::as_str).unwrap_or(""))
}

fn excerpt(text: &str) -> String {
    text.chars().take(120).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(text: &str) -> String {
        format!(
            "data: {}\n\n",
            serde_json::json!({"choices": [{"index": 0, "delta": {"content": text}}]})
        )
    }

    #[test]
    fn text_arrives_across_chunk_boundaries() {
        let body = format!(
            ": keep-alive\n{}{}data: [DONE]\n",
            chunk("Use the ä"),
            chunk("PI")
        );
        let bytes = body.as_bytes();
        let mut stream = ChatStream::default();
        let mut pieces = Vec::new();
        // One byte at a time cuts lines and the two-byte "ä" alike.
        for b in bytes {
            pieces.extend(stream.push(std::slice::from_ref(b)).expect("valid stream"));
        }
        assert_eq!(
            pieces,
            vec![
                Piece::Text("Use the ä".into()),
                Piece::Text("PI".into()),
                Piece::Done
            ]
        );
    }

    #[test]
    fn role_and_finish_chunks_carry_no_text() {
        let mut stream = ChatStream::default();
        let role = "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n";
        let done = "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n";
        let usage = "data: {\"choices\":[],\"usage\":{\"total_tokens\":3}}\n";
        for line in [role, done, usage] {
            assert_eq!(stream.push(line.as_bytes()).expect("valid"), vec![]);
        }
    }

    #[test]
    fn garbage_and_reported_errors_are_sentences() {
        let cases = [
            (
                "<html>Bad gateway</html>\n",
                "not a chat-completions stream",
            ),
            ("data: not json\n", "not JSON"),
            ("data: {\"object\":\"list\"}\n", "without choices"),
            (
                "data: {\"error\":{\"message\":\"model not found\"}}\n",
                "the model reported an error: model not found",
            ),
        ];
        for (input, expected) in cases {
            let err = ChatStream::default()
                .push(input.as_bytes())
                .expect_err(input);
            assert!(err.contains(expected), "{input:?} gave {err:?}");
        }
        let endless = vec![b'x'; MAX_LINE + 1];
        assert!(ChatStream::default().push(&endless).is_err());
    }

    #[test]
    fn a_last_line_without_a_break_still_counts() {
        let mut stream = ChatStream::default();
        assert_eq!(stream.push(b"data: [DONE]").expect("partial"), vec![]);
        assert_eq!(stream.finish().expect("done"), Some(Piece::Done));
    }
}
