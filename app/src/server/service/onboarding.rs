//! Ready-to-paste onboarding for an agent: instruction-file blocks (CLAUDE.md, AGENTS.md,
//! .cursorrules, a system prompt), a curl variant, and MCP client configurations. Each names
//! the concrete base URL and reads the key from `AGENTKEY_API_KEY`; only the `.env` line holds
//! the key itself. The same guide is served at `GET /api/instructions.md`.

use crate::model::{McpSetup, OnboardingSnippets};

/// A tool of the catalog used through the proxy, for the curl example.
pub struct ProxyExample {
    pub tool_id: String,
    pub tool_name: String,
    /// A path its rules allow with GET (`/` when it has no rules).
    pub path: String,
}

impl ProxyExample {
    /// The example for a proxied tool with these allow rules: the literal start of its first
    /// GET rule (`GET /repos/**` → `/repos`).
    pub fn new(tool_id: &str, tool_name: &str, allow: &[String]) -> Self {
        let path = allow
            .iter()
            .find_map(|r| r.strip_prefix("GET ").or_else(|| r.strip_prefix("* ")))
            .map(|p| {
                let literal: Vec<&str> = p.split('/').take_while(|s| !s.contains('*')).collect();
                literal.join("/")
            })
            .unwrap_or_default();
        ProxyExample {
            tool_id: tool_id.to_owned(),
            tool_name: tool_name.to_owned(),
            path,
        }
    }
}

/// Builds every snippet for `base_url` and the agent's key; `example` is a proxied tool of
/// the catalog for the curl example (a placeholder when there is none).
pub fn snippets(
    base_url: &str,
    api_key: &str,
    example: Option<&ProxyExample>,
) -> OnboardingSnippets {
    let base = base_url.trim_end_matches('/');
    let guide = guide(base);
    OnboardingSnippets {
        env: format!("AGENTKEY_API_KEY={api_key}"),
        claude_md: format!("## Tool access through AgentKey\n\n{guide}"),
        agents_md: format!("## Credentials (AgentKey)\n\n{guide}"),
        cursorrules: format!("# Credentials come from AgentKey\n{guide}"),
        system_prompt: guide
            .replace("\n\n", "\n")
            .replace('\n', " ")
            .trim()
            .to_owned(),
        curl: curl(base, example),
        mcp: mcp(base),
    }
}

/// The guide as a document of its own (`GET /api/instructions.md`).
pub fn instructions_document(base_url: &str) -> String {
    format!(
        "# Using AgentKey\n\n{}",
        guide(base_url.trim_end_matches('/'))
    )
}

fn guide(base: &str) -> String {
    format!(
        "AgentKey ({base}) holds the credentials for the tools you may use (GitHub, Linear, Notion, …). \
Your key is in the environment variable `AGENTKEY_API_KEY`; send it as `Authorization: Bearer $AGENTKEY_API_KEY`. \
If your client speaks MCP, connect it to `{base}/mcp` with that header instead: the same steps are tools there.

1. List the catalog and your access: `GET {base}/api/tools`. Each tool has `your_access`: `none`, `pending`, `approved`, `denied`, `revoked` (a human ended your grant; `revocation_reason` says why) or `expired` (a time-bound grant ran out; `grant_expires_at` said when). `GET {base}/api/me` summarises what you hold.
2. Unsure of a body? `GET` any POST route below for its JSON schema; `GET {base}/api/openapi.json` describes every route and answer.
3. The tool exists: `POST {base}/api/tools/{{tool_id}}/request` with `{{\"reason\": \"Open PRs for the release\"}}`. A human decides; check `your_access` with `GET {base}/api/tools` every 30 to 60 seconds, no faster, and do not ask again while it is `pending`.
4. It does not exist: `POST {base}/api/tools/suggest` with `{{\"name\": \"Linear\", \"url\": \"linear.app\", \"reason\": \"Track release issues\"}}`; when a human adds it, you get a pending request for it.
5. Once approved, the tool's `delivery` says how to use it:
   - `fetch` (or `both`): `GET {base}/api/tools/{{tool_id}}/credentials` answers `{{\"credential\", \"instructions\", \"credential_version\", \"grant_expires_at\", \"suggest_instructions_endpoint\"}}`. `credential` is a string, or a JSON object for multi-part secrets (OAuth: use its fields). Follow `instructions`, the company's usage guide. `suggest_instructions_endpoint` is a path on {base}. A tool's credential is either shared (every approved agent gets the same secret) or per-agent (yours alone); treat both as yours only.
   - `proxy`: you never receive the secret. Call the tool's own API through its `proxy_url` (`{base}/api/tools/{{tool_id}}/proxy` followed by the API's path and query, same method, headers and body) with your AgentKey key as the bearer; AgentKey adds the credential and returns the API's answer. `proxy_rules` lists the calls your grant allows.
6. Denied: read `denial_reason`; you may request again with a better reason. Revoked or expired: request again only if you still need it.
7. Learned something the next agent should know? `POST {base}/api/tools/{{tool_id}}/instructions/suggest` with `{{\"learned\": \"Use the v2 search endpoint\", \"why\": \"v1 returns stale results\"}}`.
8. A 429 means a rate limit: wait the seconds in `Retry-After` (also in the body's hint), never retry in a loop.

Rules: start with no access and check the catalog first; never hard-code, store or repeat a credential, fetch it when needed; \
if a credential stops working, fetch it again (it may have been rotated); a 403 means you lack approval: request it, do not work around it. \
Re-read these instructions at `GET {base}/api/instructions.md`.
"
    )
}

fn curl(base: &str, example: Option<&ProxyExample>) -> String {
    let (name, id, path) = match example {
        Some(e) => (e.tool_name.as_str(), e.tool_id.as_str(), e.path.as_str()),
        None => ("a proxied tool", "TOOL_ID", "/PATH"),
    };
    format!(
        "# Catalog and your access\n\
curl -s -H \"Authorization: Bearer $AGENTKEY_API_KEY\" {base}/api/tools\n\n\
# Schema of a POST route (no key needed)\n\
curl -s {base}/api/tools/suggest\n\n\
# Ask for access\n\
curl -s -X POST -H \"Authorization: Bearer $AGENTKEY_API_KEY\" -H 'Content-Type: application/json' \\\n  \
-d '{{\"reason\":\"Open PRs for the release\"}}' {base}/api/tools/TOOL_ID/request\n\n\
# Suggest a missing tool\n\
curl -s -X POST -H \"Authorization: Bearer $AGENTKEY_API_KEY\" -H 'Content-Type: application/json' \\\n  \
-d '{{\"name\":\"Linear\",\"url\":\"linear.app\",\"reason\":\"Track release issues\"}}' {base}/api/tools/suggest\n\n\
# Fetch the credential once approved (tools with delivery fetch or both)\n\
curl -s -H \"Authorization: Bearer $AGENTKEY_API_KEY\" {base}/api/tools/TOOL_ID/credentials\n\n\
# Call {name} through the proxy once approved: AgentKey adds the secret, you never see it\n\
curl -s -H \"Authorization: Bearer $AGENTKEY_API_KEY\" {base}/api/tools/{id}/proxy{path}\n"
    )
}

/// The MCP configuration of each client; none inlines the key.
fn mcp(base: &str) -> Vec<McpSetup> {
    let url = format!("{base}/mcp");
    let setup = |client: &str, place: &str, text: String| McpSetup {
        client: client.to_owned(),
        place: place.to_owned(),
        text,
    };
    vec![
        setup(
            "Claude Code",
            "a terminal in the project (writes .mcp.json)",
            format!(
                "claude mcp add --transport http --scope project agentkey {url} \\\n  --header 'Authorization: Bearer ${{AGENTKEY_API_KEY}}'\n"
            ),
        ),
        setup(
            "Claude Code",
            ".mcp.json",
            format!(
                "{{\n  \"mcpServers\": {{\n    \"agentkey\": {{\n      \"type\": \"http\",\n      \"url\": \"{url}\",\n      \"headers\": {{ \"Authorization\": \"Bearer ${{AGENTKEY_API_KEY}}\" }}\n    }}\n  }}\n}}\n"
            ),
        ),
        setup(
            "Cursor",
            ".cursor/mcp.json (or ~/.cursor/mcp.json)",
            format!(
                "{{\n  \"mcpServers\": {{\n    \"agentkey\": {{\n      \"url\": \"{url}\",\n      \"headers\": {{ \"Authorization\": \"Bearer ${{env:AGENTKEY_API_KEY}}\" }}\n    }}\n  }}\n}}\n"
            ),
        ),
        setup(
            "VS Code",
            ".vscode/mcp.json",
            format!(
                "{{\n  \"servers\": {{\n    \"agentkey\": {{\n      \"type\": \"http\",\n      \"url\": \"{url}\",\n      \"headers\": {{ \"Authorization\": \"Bearer ${{env:AGENTKEY_API_KEY}}\" }}\n    }}\n  }}\n}}\n"
            ),
        ),
        setup(
            "Codex",
            "~/.codex/config.toml",
            format!(
                "[mcp_servers.agentkey]\nurl = \"{url}\"\nbearer_token_env_var = \"AGENTKEY_API_KEY\"\n"
            ),
        ),
        setup(
            "Gemini CLI",
            "~/.gemini/settings.json (or .gemini/settings.json)",
            format!(
                "{{\n  \"mcpServers\": {{\n    \"agentkey\": {{\n      \"httpUrl\": \"{url}\",\n      \"headers\": {{ \"Authorization\": \"Bearer ${{AGENTKEY_API_KEY}}\" }}\n    }}\n  }}\n}}\n"
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_name_the_concrete_url_env_var_and_schema_discovery() {
        let example = ProxyExample::new("t-1", "GitHub", &["GET /repos/**".to_owned()]);
        let s = snippets("https://keys.example.com/", "ak_test", Some(&example));
        assert_eq!(s.env, "AGENTKEY_API_KEY=ak_test");
        for block in [&s.claude_md, &s.agents_md, &s.cursorrules, &s.system_prompt] {
            for needle in [
                "https://keys.example.com/api/tools",
                "AGENTKEY_API_KEY",
                "/api/me",
                "/api/openapi.json",
                "Retry-After",
                "revoked",
                "expired",
                "30 to 60 seconds",
                "per-agent",
                "JSON object",
                "suggest_instructions_endpoint",
                "proxy_url",
                "https://keys.example.com/api/instructions.md",
                "https://keys.example.com/mcp",
            ] {
                assert!(block.contains(needle), "{needle} missing in {block}");
            }
            assert!(
                !block.contains("ak_test"),
                "the key belongs in the env line only"
            );
            assert!(!block.contains(".com//"));
        }
        assert!(
            s.curl
                .contains("curl -s https://keys.example.com/api/tools/suggest")
        );
        assert!(
            s.curl
                .contains("https://keys.example.com/api/tools/t-1/proxy/repos\n"),
            "{}",
            s.curl
        );
        assert_eq!(ProxyExample::new("t", "T", &[]).path, "");
    }

    #[test]
    fn the_system_prompt_says_its_first_sentence_once() {
        let s = snippets("https://keys.example.com", "ak_test", None);
        let first = "AgentKey (https://keys.example.com) holds the credentials";
        assert_eq!(
            s.system_prompt.matches(first).count(),
            1,
            "{}",
            s.system_prompt
        );
        assert!(!s.system_prompt.contains('\n'));
    }

    /// Every `{…}` example after "with" in the guide is valid JSON.
    #[test]
    fn every_example_body_in_the_guide_is_valid_json() {
        let text = guide("https://keys.example.com");
        let bodies: Vec<&str> = text
            .split("with `")
            .skip(1)
            .filter_map(|rest| rest.split('`').next())
            .filter(|b| b.starts_with('{'))
            .collect();
        assert!(bodies.len() >= 3, "{bodies:?}");
        for body in bodies {
            serde_json::from_str::<serde_json::Value>(body)
                .unwrap_or_else(|e| panic!("{body} is not JSON: {e}"));
        }
    }

    #[test]
    fn mcp_setups_cover_each_client_and_never_inline_the_key() {
        let s = snippets("https://keys.example.com", "ak_secret_key", None);
        let clients: Vec<&str> = s.mcp.iter().map(|m| m.client.as_str()).collect();
        for client in ["Claude Code", "Cursor", "VS Code", "Codex", "Gemini CLI"] {
            assert!(clients.contains(&client), "{client}");
        }
        for setup in &s.mcp {
            assert!(
                setup.text.contains("https://keys.example.com/mcp"),
                "{}",
                setup.text
            );
            assert!(setup.text.contains("AGENTKEY_API_KEY"), "{}", setup.text);
            assert!(!setup.text.contains("ak_secret_key"));
            if setup.place.ends_with(".json") || setup.place.contains(".json ") {
                serde_json::from_str::<serde_json::Value>(&setup.text)
                    .unwrap_or_else(|e| panic!("{} is not JSON: {e}", setup.place));
            }
        }
        let codex = s.mcp.iter().find(|m| m.client == "Codex").expect("codex");
        assert!(
            codex
                .text
                .contains("bearer_token_env_var = \"AGENTKEY_API_KEY\"")
        );
    }
}
