// The OpenTelemetry JS trace SDK with its OTLP/HTTP (JSON) exporter, as an app uses it:
// `node send.mjs NAME EMAIL`. The exporter is configured only by its standard variables
// (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS). On Node 20 it does not honour
// proxy variables, so the tests point it at a local listener. One span NAME (the e-mail in its
// `user.email` attribute) with a child; one export at shutdown; prints the export calls made.
// Used to record fixtures/collectors/otlp/ and by tests/test_collector_otlp.py.
import { context, trace } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";

const [name, email] = process.argv.slice(2);
const exporter = new OTLPTraceExporter();
let exports = 0;
const exportSpans = exporter.export.bind(exporter);
exporter.export = (spans, done) => { exports += 1; exportSpans(spans, done); };
const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({ "service.name": "storefront", "service.version": "2.0.1" }),
  spanProcessors: [new BatchSpanProcessor(exporter)],
});
const tracer = provider.getTracer("storefront.web", "0.3.0");
const span = tracer.startSpan(name, { attributes: { "user.email": email, "session.id": "sess-31337" } });
span.addEvent("rendered", { "items": 3 });
tracer.startSpan("fetch prices", {}, trace.setSpan(context.active(), span)).end();
span.end();
await provider.shutdown();
console.log(`exports: ${exports}`);
