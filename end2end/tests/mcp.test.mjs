// The agent's whole flow over MCP through a client we did not write: the official TypeScript
// SDK (@modelcontextprotocol/sdk) with its streamable HTTP transport and a bearer header, as
// Claude Code, Cursor or VS Code connect. A human approves and revokes through the CLI; the
// proxied tool's API is a real HTTP server on loopback that records what it receives.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { execFileSync } from "node:child_process";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport, StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { BASE_URL } from "../support.mjs";

const BIN = process.env.AGENTKEY_BIN;
const PROXY_SECRET = "mcp_e2e_upstream_s3cret";
const FETCH_SECRET = "mcp_e2e_fetch_s3cret";

const cli = (args, input) =>
  JSON.parse(execFileSync(BIN, ["--json", ...args], { input: input ?? "" }).toString());

/** A tool API on loopback: records each request and echoes its headers back. */
function upstream() {
  const seen = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => { body += c; });
    req.on("end", () => {
      seen.push({ method: req.method, url: req.url, headers: req.headers, body });
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ path: req.url, got: req.headers }));
    });
  });
  return {
    seen,
    start: () => new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server.address().port))),
    stop: () => new Promise((resolve) => server.close(resolve)),
  };
}

async function connect(key) {
  const client = new Client({ name: "agentkey-e2e", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(new URL(`${BASE_URL}/mcp`), {
    requestInit: { headers: { Authorization: `Bearer ${key}` } },
  });
  await client.connect(transport);
  return client;
}

const names = async (client) => (await client.listTools()).tools.map((t) => t.name);
const refusal = (result) => {
  assert.equal(result.isError, true, JSON.stringify(result));
  return JSON.parse(result.content[0].text);
};

test("an agent lists, requests, fetches, calls a proxied API, suggests and is refused after revoke, over MCP", async () => {
  assert.ok(BIN, "AGENTKEY_BIN must point at the agentkey binary");
  const api = upstream();
  const port = await api.start();
  try {
    const { api_key: key } = cli(["agent", "create", "--name", "e2e-mcp-bot"]);
    const proxied = cli(["tool", "create", "--name", "E2E MCP Upstream", "--delivery", "proxy",
      "--upstream", `http://127.0.0.1:${port}`, "--credential-stdin"], PROXY_SECRET);
    const fetched = cli(["tool", "create", "--name", "E2E MCP Fetch", "--credential-stdin",
      "--instructions", "Use the E2E fetch tool gently."], FETCH_SECRET);
    const proxiedId = proxied.id ?? proxied.tool?.id;
    const fetchedId = fetched.id ?? fetched.tool?.id;
    assert.ok(proxiedId && fetchedId, JSON.stringify({ proxied, fetched }));

    const client = await connect(key);
    assert.equal(client.getServerVersion()?.name, "agentkey");
    assert.deepEqual(await names(client), ["list_tools", "request_access", "suggest_tool"]);

    const listed = await client.callTool({ name: "list_tools", arguments: {} });
    const mine = listed.structuredContent.tools.filter((t) => [proxiedId, fetchedId].includes(t.id));
    assert.equal(mine.length, 2);
    assert.ok(mine.every((t) => t.your_access === "none"));

    const ids = {};
    for (const toolId of [proxiedId, fetchedId]) {
      const asked = await client.callTool({ name: "request_access", arguments: { tool_id: toolId, reason: "Needed for the e2e run" } });
      assert.equal(asked.isError, false, JSON.stringify(asked));
      assert.equal(asked.structuredContent.status, "pending");
      assert.match(asked.structuredContent.message, /list_tools/);
      ids[toolId] = asked.structuredContent.request_id;
    }
    for (const id of Object.values(ids)) cli(["request", "approve", id]);

    assert.deepEqual(await names(client), ["list_tools", "request_access", "suggest_tool",
      "get_credential", "call_tool_api", "suggest_instructions"], "the list follows the new grants");

    const credential = await client.callTool({ name: "get_credential", arguments: { tool_id: fetchedId } });
    assert.equal(credential.structuredContent.credential, FETCH_SECRET);
    assert.equal(credential.structuredContent.instructions, "Use the E2E fetch tool gently.");

    const called = await client.callTool({ name: "call_tool_api", arguments: {
      tool_id: proxiedId, method: "GET", path: "/v1/items", query: { limit: "5" } } });
    assert.equal(called.isError, false, JSON.stringify(called));
    assert.equal(called.structuredContent.status, 200);
    const hit = api.seen.at(-1);
    assert.equal(hit.url, "/v1/items?limit=5");
    assert.equal(hit.headers.authorization, `Bearer ${PROXY_SECRET}`, "AgentKey injected the secret");
    assert.ok(!JSON.stringify(hit.headers).includes(key), "the agent's key never reaches the tool");
    assert.ok(!JSON.stringify(called).includes(PROXY_SECRET), "the model never sees the proxied secret");
    assert.match(called.structuredContent.body, /\[redacted\]/);

    const resources = await client.listResources();
    const guide = resources.resources.find((r) => r.uri === `agentkey://tools/${fetchedId}/guide`);
    assert.ok(guide, JSON.stringify(resources));
    const read = await client.readResource({ uri: guide.uri });
    assert.equal(read.contents[0].text, "Use the E2E fetch tool gently.");

    const suggested = await client.callTool({ name: "suggest_tool", arguments: {
      name: "E2E Missing Tool", url: "missing-tool.example", reason: "Needed for the e2e run" } });
    assert.equal(suggested.structuredContent.status, "pending", JSON.stringify(suggested));

    cli(["request", "revoke", ids[proxiedId], "--reason", "E2E is over"]);
    const after = refusal(await client.callTool({ name: "call_tool_api", arguments: {
      tool_id: proxiedId, method: "GET", path: "/v1/items" } }));
    assert.equal(after.status, 403);
    assert.equal(after.revocation_reason, "E2E is over");
    assert.ok(after.hint);
    assert.ok(!(await names(client)).includes("call_tool_api"), "no proxied tool is left to call");
    await client.close();
  } catch (err) {
    console.error("MCP flow failed:", err);
    throw err;
  } finally {
    await api.stop();
  }
});

test("a wrong key is refused with 401 and the client tries no other address", async () => {
  const transport = new StreamableHTTPClientTransport(new URL(`${BASE_URL}/mcp`), {
    requestInit: { headers: { Authorization: `Bearer ak_${"0".repeat(40)}` } },
  });
  const client = new Client({ name: "agentkey-e2e", version: "1.0.0" });
  await assert.rejects(client.connect(transport), (err) => err instanceof StreamableHTTPError && err.code === 401);
});
