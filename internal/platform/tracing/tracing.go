// Package tracing sets up OpenTelemetry traces, configured by the standard OTEL_* variables
// (docs/operations.md). Tracing is off unless an OTLP endpoint is set
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) and OTEL_SDK_DISABLED is not
// true; off, the global tracer provider is OpenTelemetry's no-op one and the instrumentation
// (HTTP, PostgreSQL, Redis) is not installed at all, so it costs nothing.
//
// One trace follows a message: the API request (continuing an incoming traceparent), its insert,
// the produce (the W3C trace context travels in the Kafka record's traceparent header), the
// worker's dispatch with the provider call, the events it causes and their webhook deliveries
// (the message row keeps its trace context for the events written later, callbacks included).
package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/logicspike/comms/pkg/provider"
)

// Name is the instrumentation scope of the spans comms starts itself.
const Name = "github.com/logicspike/comms"

var enabled atomic.Bool

// Enabled reports whether traces are exported; instrumentation is installed only then.
func Enabled() bool { return enabled.Load() }

// Configured reports whether the environment asks for traces.
func Configured(getenv func(string) string) bool {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") || strings.EqualFold(getenv("OTEL_TRACES_EXPORTER"), "none") {
		return false
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Setup starts exporting traces over OTLP when the environment asks for it, over gRPC or
// HTTP/protobuf as OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL says
// (default http/protobuf), naming the service service unless OTEL_SERVICE_NAME does. The returned function flushes and stops the
// exporter; call it at shutdown.
func Setup(ctx context.Context, service string, log *slog.Logger) (shutdown func(context.Context) error, err error) {
	otel.SetTextMapPropagator(propagation.TraceContext{})
	if !Configured(os.Getenv) {
		return func(context.Context) error { return nil }, nil
	}
	protocol := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	// Endpoint, headers, timeout and TLS come from OTEL_EXPORTER_OTLP_* for either.
	var exp sdktrace.SpanExporter
	switch protocol {
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	case "", "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	default:
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q: comms exports grpc or http/protobuf", protocol)
	}
	if err != nil {
		return nil, err
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", service)))
	if err != nil {
		return nil, err
	}
	if env, err := resource.New(ctx, resource.WithFromEnv()); err == nil { // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES win
		res, _ = resource.Merge(res, env)
	}
	// The sampler comes from OTEL_TRACES_SAMPLER (default: parent-based, always on).
	Use(sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)))
	log.Info("tracing on", "service", service)
	return otel.GetTracerProvider().(*sdktrace.TracerProvider).Shutdown, nil
}

// Use installs tp as the global tracer provider and turns the instrumentation on: what Setup
// does with an OTLP exporter, and tests with an in-memory one.
func Use(tp trace.TracerProvider) {
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	provider.Instrument = Transport
	enabled.Store(true)
}

// Transport adds HTTP client spans (otelhttp) to rt, and the traceparent header to its requests.
func Transport(rt http.RoundTripper) http.RoundTripper { return otelhttp.NewTransport(rt) }

// Handler serves h with a server span per request, continuing an incoming traceparent, when
// tracing is on; h itself when off. The span is named "<service> <method>" until the route that
// serves the request names it (NameRoute).
func Handler(h http.Handler, service string) http.Handler {
	if !Enabled() {
		return h
	}
	inner := otelhttp.NewHandler(h, service, otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
		// Called again once the request is served: the route's name, if one was given, stays.
		if name, ok := r.Context().Value(routeKey{}).(*string); ok && *name != "" {
			return *name
		}
		return service + " " + r.Method
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), routeKey{}, new(string))))
	})
}

type routeKey struct{}

// NameRoute names the request's server span after the route serving it ("api POST
// /v1/messages").
func NameRoute(ctx context.Context, name string) {
	if holder, ok := ctx.Value(routeKey{}).(*string); ok {
		*holder = name
	}
	trace.SpanFromContext(ctx).SetName(name)
}

// Redis adds command spans to rdb when tracing is on.
func Redis(rdb *redis.Client) error {
	if !Enabled() {
		return nil
	}
	return redisotel.InstrumentTracing(rdb)
}

// Start starts a span of comms' own.
func Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	return otel.Tracer(Name).Start(ctx, name, opts...)
}

// TraceParent is ctx's span context as a W3C traceparent value, "" without a sampled span (so
// with tracing off).
func TraceParent(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c["traceparent"]
}

// Remote returns ctx with the span context of traceparent as its remote parent ("" or malformed:
// ctx unchanged).
func Remote(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": traceparent})
}

// LogHandler adds trace_id and span_id to each record logged with a context holding a span, so
// a log line leads to its trace.
func LogHandler(h slog.Handler) slog.Handler { return logHandler{h} }

type logHandler struct{ slog.Handler }

func (l logHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return l.Handler.Handle(ctx, r)
}

func (l logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return logHandler{l.Handler.WithAttrs(as)}
}
func (l logHandler) WithGroup(name string) slog.Handler { return logHandler{l.Handler.WithGroup(name)} }
