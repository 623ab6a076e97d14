//! A real SMTP server on loopback for tests: speaks the subset lettre uses (EHLO, MAIL, RCPT,
//! DATA, QUIT) and keeps every message it receives.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Clone, Default)]
pub struct SmtpSink {
    pub port: u16,
    messages: Arc<Mutex<Vec<String>>>,
}

impl SmtpSink {
    /// Binds 127.0.0.1 on a free port and serves until the test ends.
    pub async fn start() -> Self {
        Self::start_slow(Duration::ZERO).await
    }

    /// Like [`SmtpSink::start`], but every connection waits `delay` before the server greets
    /// it: a mail server that answers slowly.
    pub async fn start_slow(delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind smtp sink");
        let sink = SmtpSink {
            port: listener.local_addr().expect("addr").port(),
            messages: Default::default(),
        };
        let messages = sink.messages.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let messages = messages.clone();
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let mut lines = BufReader::new(read).lines();
                    tokio::time::sleep(delay).await;
                    let _ = write.write_all(b"220 test-sink ESMTP\r\n").await;
                    let mut data: Option<String> = None;
                    while let Ok(Some(line)) = lines.next_line().await {
                        if let Some(body) = data.as_mut() {
                            if line == "." {
                                messages
                                    .lock()
                                    .expect("lock")
                                    .push(data.take().unwrap_or_default());
                                let _ = write.write_all(b"250 queued\r\n").await;
                            } else {
                                body.push_str(&line);
                                body.push('\n');
                            }
                            continue;
                        }
                        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                        let reply: &[u8] = match verb.as_str() {
                            "EHLO" | "HELO" => b"250 test-sink\r\n",
                            "DATA" => {
                                data = Some(String::new());
                                b"354 go ahead\r\n"
                            }
                            "QUIT" => {
                                let _ = write.write_all(b"221 bye\r\n").await;
                                break;
                            }
                            _ => b"250 ok\r\n",
                        };
                        let _ = write.write_all(reply).await;
                    }
                });
            }
        });
        sink
    }

    /// The URL to give AgentKey.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn count(&self) -> usize {
        self.messages.lock().expect("lock").len()
    }

    /// True when every message received so far names `address` as its recipient.
    pub fn all_to(&self, address: &str) -> bool {
        let to = format!("To: {address}");
        self.messages
            .lock()
            .expect("lock")
            .iter()
            .all(|m| m.lines().any(|l| l.eq_ignore_ascii_case(&to)))
    }

    /// Waits for message number `index` (0-based) and returns it with quoted-printable undone.
    pub async fn wait_for(&self, index: usize) -> String {
        for _ in 0..100 {
            if let Some(m) = self.messages.lock().expect("lock").get(index) {
                return decode_qp(m);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no mail number {index} after 5 s");
    }
}

fn decode_qp(raw: &str) -> String {
    let joined = raw.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        if bytes[i] == b'='
            && let Some(b) = hex
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The sign-in token in a mail.
pub fn token_in(mail: &str) -> String {
    let start = mail.find("token=").expect("mail has a sign-in link") + "token=".len();
    mail[start..start + 64].to_owned()
}
