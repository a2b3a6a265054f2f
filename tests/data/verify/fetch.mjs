// Node's built-in fetch() (undici): on Node 20 it ignores HTTP(S)_PROXY. POSTs a Hasura CLI
// telemetry body to argv[2]; errors are printed, not thrown (the test judges the traffic).
const url = process.argv[2];
const body = JSON.stringify({topic: "cli", data: {command: "hasura version", is_error: false,
  uuid: "e462ce20-42dd-40fd-9549-edfb92f80455", execution_id: "ddfa9c33-0693-457d-9026-c7f456c43322"}});
try {
  const answer = await fetch(url, {method: "POST", headers: {"content-type": "application/json"}, body});
  console.log("status", answer.status);
} catch (error) {
  console.log("fetch failed:", error.cause?.code ?? error.message);
}
