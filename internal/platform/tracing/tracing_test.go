package tracing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/logicspike/comms/internal/platform/tracing"
)

// A line logged inside a span names its trace; one logged outside names none.
func TestLogLinesCarryTheTraceID(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(tracing.LogHandler(slog.NewJSONHandler(&buf, nil))).With("tenant_id", "ten_1")
	ctx, span := sdktrace.NewTracerProvider().Tracer("test").Start(context.Background(), "op")
	log.InfoContext(ctx, "inside")
	span.End()
	log.InfoContext(context.Background(), "outside")
	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	var in, out map[string]any
	if len(lines) != 2 || json.Unmarshal(lines[0], &in) != nil || json.Unmarshal(lines[1], &out) != nil {
		t.Fatalf("log: %s", buf.Bytes())
	}
	if in["trace_id"] != span.SpanContext().TraceID().String() || in["span_id"] != span.SpanContext().SpanID().String() || in["tenant_id"] != "ten_1" {
		t.Fatalf("inside a span: %v", in)
	}
	if _, ok := out["trace_id"]; ok {
		t.Fatalf("outside a span: %v", out)
	}
}

// Tracing is on only when an OTLP endpoint is set and the SDK is not disabled.
func TestTracingIsOffUnlessAnEndpointIsSet(t *testing.T) {
	for env, want := range map[string]bool{
		"":                                      false,
		"OTEL_EXPORTER_OTLP_ENDPOINT":           true,
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT":    true,
		"OTEL_EXPORTER_OTLP_ENDPOINT+disabled":  false,
		"OTEL_EXPORTER_OTLP_ENDPOINT+exporter0": false,
	} {
		got := tracing.Configured(func(k string) string {
			switch {
			case env == "":
				return ""
			case k == "OTEL_SDK_DISABLED" && env == "OTEL_EXPORTER_OTLP_ENDPOINT+disabled":
				return "true"
			case k == "OTEL_TRACES_EXPORTER" && env == "OTEL_EXPORTER_OTLP_ENDPOINT+exporter0":
				return "none"
			case len(env) >= len(k) && env[:len(k)] == k:
				return "http://127.0.0.1:4318"
			}
			return ""
		})
		if got != want {
			t.Errorf("%q: configured %v, want %v", env, got, want)
		}
	}
}
