// Package elastic is the Elasticsearch sink: it writes each batch with one
// bulk request of "create" actions into a data stream, with the event id as
// the document id, so a retried or replayed event is never stored twice.
package elastic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"

	"eventlistener/event"
	"eventlistener/sinks"
)

var _ sinks.Sink = (*Sink)(nil)

// Options configure the sink.
type Options struct {
	// Addresses of the cluster's nodes, e.g. http://127.0.0.1:9200.
	Addresses []string
	// Index is the data stream's name; the index template matches it alone.
	Index  string
	Logger *slog.Logger
	// Transport, when set, replaces the HTTP transport (tests).
	Transport http.RoundTripper
	// ReplaceTemplate makes Migrate replace an index template that
	// exists; otherwise it only creates a missing one, so an operator's
	// changes (an ILM policy, shards, replicas) are kept.
	ReplaceTemplate bool
}

// Sink writes events to Elasticsearch.
type Sink struct {
	es      *elasticsearch.Client
	index   string
	replace bool
	log     *slog.Logger
}

// New makes the client. It does not connect yet.
func New(opt Options) (*Sink, error) {
	if opt.Index == "" {
		return nil, errors.New("no Elasticsearch index (data stream) name")
	}
	if err := validIndexName(opt.Index); err != nil {
		return nil, err
	}
	es, err := elasticsearch.NewClient(elasticsearch.Config{
		Addresses: opt.Addresses,
		// The batcher retries with backoff; a second, hidden retry loop in
		// the transport would only multiply the attempts.
		DisableRetry: true,
		Transport:    opt.Transport,
	})
	if err != nil {
		return nil, fmt.Errorf("invalid Elasticsearch settings: %w", err)
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sink{es: es, index: opt.Index, replace: opt.ReplaceTemplate, log: log.With("sink", "elasticsearch")}, nil
}

// validIndexName applies Elasticsearch's rules for index names, so a bad
// name stops the start instead of failing every batch.
func validIndexName(name string) error {
	switch {
	case name != strings.ToLower(name):
		return fmt.Errorf("elasticsearch index %q must be lowercase", name)
	case strings.ContainsAny(name, `\/*?"<>| ,#:`):
		return fmt.Errorf(`elasticsearch index %q must not contain any of \ / * ? " < > | space , # or colon`, name)
	case strings.HasPrefix(name, "-") || strings.HasPrefix(name, "_") || strings.HasPrefix(name, "+") || strings.HasPrefix(name, "."):
		return fmt.Errorf("elasticsearch index %q must not start with -, _, + or a dot", name)
	case len(name) > 255:
		return fmt.Errorf("elasticsearch index %q is longer than 255 bytes", name)
	}
	return nil
}

// Name is "elasticsearch".
func (s *Sink) Name() string { return "elasticsearch" }

// TemplateName is the name of the index template Migrate installs.
func (s *Sink) TemplateName() string { return "eventlistener-" + s.index }

// Template is the index template: a data stream with @timestamp taken from
// the event's time, keywords for the envelope, and the data as one
// flattened field so that producers' varied payloads never explode or
// conflict in the mapping.
func (s *Sink) Template() map[string]any {
	kw := map[string]any{"type": "keyword", "ignore_above": 1024}
	return map[string]any{
		"index_patterns": []string{s.index},
		"data_stream":    map[string]any{},
		"priority":       200,
		"template": map[string]any{
			"mappings": map[string]any{
				"dynamic": false,
				"properties": map[string]any{
					"@timestamp":  map[string]any{"type": "date"},
					"id":          kw,
					"type":        kw,
					"source":      kw,
					"subject":     kw,
					"time":        map[string]any{"type": "date"},
					"received_at": map[string]any{"type": "date"},
					// The envelope decoder keeps data within these
					// (event.MaxObjectDepth, event.MaxKeyBytes, which
					// assumes ignore_above 4096): longer strings are kept
					// in _source, unindexed.
					"data": map[string]any{"type": "flattened", "depth_limit": event.MaxObjectDepth, "ignore_above": 4096},
				},
			},
		},
		"_meta": map[string]any{"managed_by": "eventlistener", "version": TemplateVersion},
	}
}

// TemplateVersion numbers the template's shape; it is raised when the
// template changes, so an older one left in place can be reported.
const TemplateVersion = 2

// Migrate creates the index template when it is missing and leaves one
// that exists alone (an operator may have added an ILM policy or changed
// shards), unless ReplaceTemplate is set.
func (s *Sink) Migrate(ctx context.Context) error {
	body, _ := json.Marshal(s.Template())
	res, err := s.es.Indices.PutIndexTemplate(s.TemplateName(), bytes.NewReader(body),
		s.es.Indices.PutIndexTemplate.WithContext(ctx), s.es.Indices.PutIndexTemplate.WithCreate(!s.replace))
	if err != nil {
		return fmt.Errorf("cannot install the Elasticsearch index template: %w", err)
	}
	defer res.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	switch {
	case !res.IsError() && s.replace:
		s.log.Info("index template replaced", "template", s.TemplateName(), "version", TemplateVersion)
	case !res.IsError():
		s.log.Info("index template created", "template", s.TemplateName(), "version", TemplateVersion)
	case res.StatusCode == http.StatusBadRequest && bytes.Contains(msg, []byte("already exists")):
		if v := s.installedVersion(ctx); v != TemplateVersion {
			s.log.Warn("the index template is not this version's; it is left alone: run `eventlistener migrate --force` to replace it, "+
				"then roll the data stream over (POST /"+s.index+"/_rollover) so that the write index takes it; until then the older mapping may refuse events the API accepts",
				"template", s.TemplateName(), "installed_version", v, "version", TemplateVersion)
		} else {
			s.log.Info("index template exists; left alone (`eventlistener migrate --force` replaces it)", "template", s.TemplateName())
		}
	default:
		return fmt.Errorf("cannot install the Elasticsearch index template: %s: %s", res.Status(), msg)
	}
	return nil
}

// installedVersion reads the version in the installed template's _meta (0
// when it has none or cannot be read).
func (s *Sink) installedVersion(ctx context.Context) int {
	res, err := s.es.Indices.GetIndexTemplate(s.es.Indices.GetIndexTemplate.WithName(s.TemplateName()),
		s.es.Indices.GetIndexTemplate.WithContext(ctx))
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	var out struct {
		IndexTemplates []struct {
			IndexTemplate struct {
				Meta struct {
					Version int `json:"version"`
				} `json:"_meta"`
			} `json:"index_template"`
		} `json:"index_templates"`
	}
	if res.IsError() || json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&out) != nil || len(out.IndexTemplates) == 0 {
		return 0
	}
	return out.IndexTemplates[0].IndexTemplate.Meta.Version
}

// Ping checks that the cluster answers.
func (s *Sink) Ping(ctx context.Context) error {
	res, err := s.es.Ping(s.es.Ping.WithContext(ctx))
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.IsError() {
		return fmt.Errorf("elasticsearch answered %s", res.Status())
	}
	return nil
}

// Close does nothing: the client holds no connection that needs closing.
func (s *Sink) Close() error { return nil }

// document is how an event is stored.
type document struct {
	Timestamp  time.Time       `json:"@timestamp"`
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Source     string          `json:"source"`
	Subject    string          `json:"subject,omitempty"`
	Time       time.Time       `json:"time"`
	ReceivedAt time.Time       `json:"received_at"`
	Data       json.RawMessage `json:"data,omitempty"`
}

// docData fits data to the flattened field, which takes only an object: any
// other JSON value is stored as {"value": data}. JSON null is left out.
func docData(data json.RawMessage) json.RawMessage {
	trimmed := bytes.TrimSpace(data)
	switch {
	case len(trimmed) == 0 || string(trimmed) == "null":
		return nil
	case trimmed[0] == '{':
		return data
	}
	wrapped := make([]byte, 0, len(trimmed)+10)
	wrapped = append(wrapped, `{"value":`...)
	wrapped = append(wrapped, trimmed...)
	return append(wrapped, '}')
}

type action struct {
	Create struct {
		ID string `json:"_id"`
	} `json:"create"`
}

type bulkResponse struct {
	Errors bool                  `json:"errors"`
	Items  []map[string]bulkItem `json:"items"`
}

type bulkItem struct {
	Status int        `json:"status"`
	Error  *itemError `json:"error"`
}

type itemError struct {
	Type     string     `json:"type"`
	Reason   string     `json:"reason"`
	CausedBy *itemError `json:"caused_by"`
}

func (e *itemError) String() string {
	if e == nil {
		return "no reason given"
	}
	s := e.Type + ": " + e.Reason
	if e.CausedBy != nil {
		s += " (caused by " + e.CausedBy.String() + ")"
	}
	return s
}

// Write sends one bulk request. Per item: 201 is stored and 409 means
// already stored; 429 and 5xx are retryable; any other status is the
// event's own fault and is reported for it alone.
func (s *Sink) Write(ctx context.Context, events []event.Event) error {
	if len(events) == 0 {
		return nil
	}
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false)
	var failures []sinks.Failure
	sent := make([]int, 0, len(events)) // positions in events of the items sent
	for i := range events {
		e := &events[i]
		var a action
		a.Create.ID = e.ID
		mark := body.Len()
		doc := document{Timestamp: e.Time, ID: e.ID, Type: e.Type, Source: e.Source, Subject: e.Subject,
			Time: e.Time, ReceivedAt: e.ReceivedAt, Data: docData(e.Data)}
		err := enc.Encode(&a)
		if err == nil {
			err = enc.Encode(&doc)
		}
		if err != nil {
			body.Truncate(mark)
			failures = append(failures, sinks.Failure{Index: i, Err: fmt.Errorf("cannot encode event %s: %w", e.ID, err)})
			continue
		}
		sent = append(sent, i)
	}
	if len(sent) > 0 {
		if err := s.bulk(ctx, events, sent, body.Bytes(), &failures); err != nil {
			if len(failures) == 0 {
				return err
			}
			for _, i := range sent {
				failures = append(failures, sinks.Failure{Index: i, Err: err})
			}
		}
	}
	if len(failures) > 0 {
		return sinks.Partial(failures)
	}
	return nil
}

// bulk sends body (the items of sent) and adds the items that failed to
// failures; its error is a whole-request failure.
func (s *Sink) bulk(ctx context.Context, events []event.Event, sent []int, body []byte, failures *[]sinks.Failure) error {
	res, err := s.es.Bulk(bytes.NewReader(body),
		s.es.Bulk.WithContext(ctx),
		s.es.Bulk.WithIndex(s.index),
		s.es.Bulk.WithFilterPath("errors", "items.*.status", "items.*.error"))
	if err != nil {
		return sinks.MarkRetryable(fmt.Errorf("cannot write batch to elasticsearch: %w", err))
	}
	defer res.Body.Close()
	if res.IsError() {
		return s.requestError(ctx, res, events, sent, failures)
	}
	var br bulkResponse
	if err := json.NewDecoder(res.Body).Decode(&br); err != nil {
		return sinks.MarkRetryable(fmt.Errorf("cannot read the elasticsearch bulk response: %w", err))
	}
	if len(br.Items) != len(sent) {
		return sinks.MarkRetryable(fmt.Errorf("elasticsearch answered %d items for %d sent", len(br.Items), len(sent)))
	}
	if !br.Errors {
		return nil
	}
	for k, item := range br.Items {
		var it bulkItem
		for _, v := range item {
			it = v
		}
		i := sent[k]
		switch {
		case it.Status >= 200 && it.Status < 300, it.Status == http.StatusConflict:
			// stored now, or already stored by an earlier attempt
		case it.Status == http.StatusTooManyRequests || it.Status >= 500:
			*failures = append(*failures, sinks.Failure{Index: i, Err: sinks.MarkRetryable(
				fmt.Errorf("elasticsearch could not take event %s now (%d): %s", events[i].ID, it.Status, it.Error))})
		default:
			*failures = append(*failures, sinks.Failure{Index: i,
				Err: fmt.Errorf("elasticsearch refused event %s (%d): %s", events[i].ID, it.Status, it.Error)})
		}
	}
	return nil
}

// requestError handles a bulk request refused as a whole. 413 (too large)
// splits the request in halves; 429 and 5xx are retryable; other statuses
// are not.
func (s *Sink) requestError(ctx context.Context, res *esapi.Response, events []event.Event, sent []int, failures *[]sinks.Failure) error {
	msg, _ := io.ReadAll(io.LimitReader(res.Body, 2048))
	err := fmt.Errorf("cannot write batch to elasticsearch: %s %s", res.Status(), bytes.TrimSpace(msg))
	switch {
	case res.StatusCode == http.StatusRequestEntityTooLarge && len(sent) > 1:
		half := len(sent) / 2
		for _, part := range [][]int{sent[:half], sent[half:]} {
			sub := make([]event.Event, len(part))
			for j, i := range part {
				sub[j] = events[i]
			}
			if werr := s.Write(ctx, sub); werr != nil {
				var pe *sinks.PartialError
				if !errors.As(werr, &pe) {
					for _, i := range part {
						*failures = append(*failures, sinks.Failure{Index: i, Err: werr})
					}
					continue
				}
				for _, f := range pe.Failures {
					*failures = append(*failures, sinks.Failure{Index: part[f.Index], Err: f.Err})
				}
			}
		}
		return nil
	case res.StatusCode == http.StatusTooManyRequests || res.StatusCode >= 500:
		return sinks.MarkRetryable(err)
	}
	return err
}
