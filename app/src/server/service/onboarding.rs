//! Ready-to-paste onboarding blocks for an agent's instruction files (CLAUDE.md, AGENTS.md,
//! .cursorrules, a system prompt) and a curl variant. Each names the concrete base URL.

use crate::model::OnboardingSnippets;

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
        system_prompt: format!(
            "You get credentials for external tools only from AgentKey at {base}. {}",
            guide.replace('\n', " ").replace("  ", " ")
        ),
        curl: curl(base, example),
    }
}

fn guide(base: &str) -> String {
    format!(
        "AgentKey ({base}) holds the credentials for the tools you may use (GitHub, Linear, Notion, …). \
Your key is in the environment variable `AGENTKEY_API_KEY`; send it as `Authorization: Bearer $AGENTKEY_API_KEY`.

1. List the catalog and your access: `GET {base}/api/tools` (`your_access` is none, pending, approved, denied, revoked or expired).
2. Unsure of a body? `GET` any POST route below for its JSON schema.
3. The tool exists: `POST {base}/api/tools/{{tool_id}}/request` with `{{\"reason\": \"why you need it\"}}`, then wait for a human to approve.
4. It does not exist: `POST {base}/api/tools/suggest` with `{{\"name\", \"url\", \"reason\"}}`; you get a pending request once it is added.
5. Once approved, the catalog entry's `delivery` says how to use it. `fetch` (or `both`): `GET {base}/api/tools/{{tool_id}}/credentials` and follow its `instructions`. \
`proxy`: you never receive the secret; call the tool's own API through its `proxy_url` (`{base}/api/tools/{{tool_id}}/proxy` + the API's path and query, same method and body) \
with your AgentKey key as the bearer. AgentKey adds the credential and returns the API's answer; `proxy_rules` lists the calls your grant allows.
6. Denied: read `denial_reason` in the catalog; you may request again with a better reason.
7. Learned something the next agent should know? `POST {base}/api/tools/{{tool_id}}/instructions/suggest` with `{{\"learned\", \"why\"}}`.

Rules: start with no access and check the catalog first; never hard-code or store a credential, fetch it when needed; \
if a credential stops working, fetch it again (it may have been rotated); a 403 means you lack approval — request it, do not work around it.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_name_the_concrete_url_env_var_and_schema_discovery() {
        let example = ProxyExample::new("t-1", "GitHub", &["GET /repos/**".to_owned()]);
        let s = snippets("https://keys.example.com/", "ak_test", Some(&example));
        assert_eq!(s.env, "AGENTKEY_API_KEY=ak_test");
        for block in [&s.claude_md, &s.agents_md, &s.cursorrules, &s.system_prompt] {
            assert!(
                block.contains("https://keys.example.com/api/tools"),
                "{block}"
            );
            assert!(block.contains("AGENTKEY_API_KEY"));
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
        assert!(s.claude_md.contains("proxy_url"));
        assert_eq!(ProxyExample::new("t", "T", &[]).path, "");
    }
}
