// The agent API's OpenAPI document, checked by a validator we did not write
// (@apidevtools/swagger-parser validates against the official OpenAPI 3.1 schema and resolves
// every reference), so client generators get a document they accept.
import { test } from "node:test";
import assert from "node:assert/strict";
import SwaggerParser from "@apidevtools/swagger-parser";
import { BASE_URL } from "../support.mjs";

test("GET /api/openapi.json validates as OpenAPI 3.1 and types every success body", async () => {
  const res = await fetch(`${BASE_URL}/api/openapi.json`);
  assert.equal(res.status, 200);
  const doc = await res.json();
  const api = await SwaggerParser.validate(structuredClone(doc));
  assert.equal(api.openapi, "3.1.0");
  const catalog = api.paths["/api/tools"].get.responses["200"].content["application/json"].schema;
  assert.equal(catalog.properties.tools.type, "array");
  assert.ok(catalog.properties.tools.items.properties.your_access, "references resolve to the generated types");
  const created = api.paths["/api/tools/{tool_id}/request"].post.responses["201"].content["application/json"].schema;
  // Always sent: whether the request renewed a live grant (then `grant_expires_at` too).
  assert.deepEqual(created.required.sort(), ["message", "renewal", "request_id", "status"]);
  assert.ok(created.properties.grant_expires_at, "a renewal says when the grant ends");
  const asked = api.paths["/api/tools/{tool_id}/request"].post.requestBody.content["application/json"].schema;
  assert.ok(asked.properties.duration, "the request body documents the duration");
});
