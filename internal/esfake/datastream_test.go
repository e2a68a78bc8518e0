package esfake

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/elastic/go-elasticsearch/v8/esapi"
)

func TestDataStreamWriteRules(t *testing.T) {
	e := setup(t)
	tmpl, dsName := e.withTemplate()
	ds := dsName("rules")
	r := e.bulk(
		action("create", ds, "c1"), `{"@timestamp":"2024-05-01T10:00:00Z","event":{"id":"c1","kind":"event"}}`,
		action("index", ds, "c2"), `{"@timestamp":"2024-05-01T10:00:01Z"}`,
		action("create", ds, "c3"), `{"event":{"id":"c3"}}`,
		action("create", ds, ""), `{"@timestamp":"2024-05-01T10:00:02Z"}`,
		action("create", ds, "c1"), `{"@timestamp":"2024-05-01T10:00:03Z"}`,
		action("delete", ds, "c1"),
	)
	cases := []struct {
		name       string
		status     int
		errType    string
		reason     string
		backingIdx bool
	}{
		{"create with @timestamp lands in the backing index", 201, "", "", true},
		{"index op is refused", 400, "illegal_argument_exception", "only write ops with an op_type of create are allowed in data streams", false},
		{"create without @timestamp is refused", 400, "document_parsing_exception", "data stream timestamp field [@timestamp] is missing", true},
		{"create without _id gets a generated one", 201, "", "", true},
		{"create of an existing _id conflicts", 409, "version_conflict_engine_exception", "[c1]: version conflict, document already exists (current version [1])", true},
		{"delete through the data stream is refused", 400, "illegal_argument_exception", "only write ops with an op_type of create are allowed in data streams", false},
	}
	if len(r.Items) != len(cases) {
		t.Fatalf("%d items", len(r.Items))
	}
	var backing string
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, it := r.item(i)
			if it.Status != c.status {
				t.Fatalf("status %d, want %d (%+v)", it.Status, c.status, it.Error)
			}
			if c.errType != "" && (it.Error == nil || it.Error.Type != c.errType || !strings.Contains(it.Error.text(), c.reason)) {
				t.Errorf("error %+v, want %s %q", it.Error, c.errType, c.reason)
			}
			if c.backingIdx {
				m := backingIndexRe.FindStringSubmatch(it.Index)
				if m == nil || m[1] != ds {
					t.Errorf("_index = %q, want the backing index .ds-%s-<date>-000001", it.Index, ds)
				}
				backing = it.Index
			} else if it.Index != ds {
				t.Errorf("_index = %q, want the data stream name", it.Index)
			}
		})
	}
	if _, it := r.item(3); it.ID == nil || *it.ID == "" {
		t.Errorf("no generated _id")
	}
	if _, it := r.item(2); it.Error != nil && !strings.HasPrefix(it.Error.Reason, "[1:") {
		t.Errorf("timestamp error reason %q lacks the [line:col] prefix", it.Error.Reason)
	}

	status, body, _ := e.do(esapi.IndicesGetDataStreamRequest{Name: []string{ds}})
	if status != 200 {
		t.Fatalf("get data stream: %d %s", status, body)
	}
	var got struct {
		DataStreams []struct {
			Name           string `json:"name"`
			TimestampField struct {
				Name string `json:"name"`
			} `json:"timestamp_field"`
			Indices []struct {
				IndexName string `json:"index_name"`
			} `json:"indices"`
			Template string `json:"template"`
		} `json:"data_streams"`
	}
	if err := json.Unmarshal(body, &got); err != nil || len(got.DataStreams) != 1 {
		t.Fatalf("data streams %s: %v", body, err)
	}
	d := got.DataStreams[0]
	if d.Name != ds || d.TimestampField.Name != "@timestamp" || len(d.Indices) != 1 || d.Indices[0].IndexName != backing || d.Template != tmpl {
		t.Errorf("data stream = %+v", d)
	}

	e.refresh(ds)
	if n := e.count(ds, ""); n != 2 {
		t.Errorf("count = %d, want 2", n)
	}
}

func TestDataStreamAPIs(t *testing.T) {
	e := setup(t)
	tmpl, dsName := e.withTemplate()
	ds := dsName("apis")

	t.Run("a missing data stream is a 404", func(t *testing.T) {
		status, body, _ := e.do(esapi.IndicesGetDataStreamRequest{Name: []string{ds}})
		if status != 404 || decodeErr(t, body).Error.Type != "index_not_found_exception" {
			t.Errorf("%d %s", status, body)
		}
	})
	t.Run("create explicitly", func(t *testing.T) {
		status, body, _ := e.do(esapi.IndicesCreateDataStreamRequest{Name: ds})
		if status != 200 || !strings.Contains(string(body), `"acknowledged":true`) {
			t.Fatalf("%d %s", status, body)
		}
	})
	t.Run("a data stream needs a data stream template", func(t *testing.T) {
		status, body, _ := e.do(esapi.IndicesCreateDataStreamRequest{Name: e.prefix + "-nodstemplate"})
		if status != 400 || decodeErr(t, body).Error.Type != "illegal_argument_exception" {
			t.Errorf("%d %s", status, body)
		}
	})
	t.Run("DELETE /<data stream> is refused", func(t *testing.T) {
		status, body, _ := e.do(esapi.IndicesDeleteRequest{Index: []string{ds}})
		if status != 400 || decodeErr(t, body).Error.Type != "illegal_argument_exception" {
			t.Errorf("%d %s", status, body)
		}
	})
	t.Run("a template in use cannot be deleted", func(t *testing.T) {
		status, body, _ := e.do(esapi.IndicesDeleteIndexTemplateRequest{Name: tmpl})
		if status != 400 || decodeErr(t, body).Error.Type != "illegal_argument_exception" {
			t.Errorf("%d %s", status, body)
		}
	})
	t.Run("delete data stream removes its data", func(t *testing.T) {
		e.bulk(action("create", ds, "x"), `{"@timestamp":"2024-05-01T10:00:00Z"}`)
		status, body, _ := e.do(esapi.IndicesDeleteDataStreamRequest{Name: []string{ds}})
		if status != 200 {
			t.Fatalf("%d %s", status, body)
		}
		status, body, _ = e.do(esapi.CountRequest{Index: []string{ds}})
		if status != 404 || decodeErr(t, body).Error.Type != "index_not_found_exception" {
			t.Errorf("count after delete: %d %s", status, body)
		}
	})
}

func TestIndexTemplateAPI(t *testing.T) {
	e := setup(t)
	name := e.prefix + "-tpl"
	t.Cleanup(func() { e.cleanupDo(esapi.IndicesDeleteIndexTemplateRequest{Name: name}) })
	status, body, _ := e.do(esapi.IndicesPutIndexTemplateRequest{Name: name, Body: strings.NewReader(dsTemplate(e.prefix + "-x-*"))})
	if status != 200 || string(body) != `{"acknowledged":true}` {
		t.Fatalf("put: %d %s", status, body)
	}
	status, body, _ = e.do(esapi.IndicesGetIndexTemplateRequest{Name: name})
	if status != 200 {
		t.Fatalf("get: %d %s", status, body)
	}
	var got struct {
		IndexTemplates []struct {
			Name          string `json:"name"`
			IndexTemplate struct {
				IndexPatterns []string        `json:"index_patterns"`
				Priority      int             `json:"priority"`
				DataStream    json.RawMessage `json:"data_stream"`
				Template      struct {
					Settings struct {
						Index struct {
							Replicas string `json:"number_of_replicas"`
						} `json:"index"`
					} `json:"settings"`
					Mappings struct {
						Properties map[string]json.RawMessage `json:"properties"`
					} `json:"mappings"`
				} `json:"template"`
			} `json:"index_template"`
		} `json:"index_templates"`
	}
	if err := json.Unmarshal(body, &got); err != nil || len(got.IndexTemplates) != 1 {
		t.Fatalf("get body %s: %v", body, err)
	}
	it := got.IndexTemplates[0]
	if it.Name != name || len(it.IndexTemplate.IndexPatterns) != 1 || it.IndexTemplate.Priority != 200 ||
		len(it.IndexTemplate.DataStream) == 0 || it.IndexTemplate.Template.Settings.Index.Replicas != "0" ||
		it.IndexTemplate.Template.Mappings.Properties["payload"] == nil {
		t.Errorf("template = %s", body)
	}
	if status, _, _ := e.do(esapi.IndicesExistsIndexTemplateRequest{Name: name}); status != 200 {
		t.Errorf("exists: %d", status)
	}
	t.Run("without index_patterns", func(t *testing.T) {
		status, body, _ := e.do(esapi.IndicesPutIndexTemplateRequest{Name: name + "-bad", Body: strings.NewReader(`{"priority":1}`)})
		if status != 400 {
			t.Errorf("%d %s", status, body)
		}
	})
	t.Run("with an unknown field type", func(t *testing.T) {
		body := `{"index_patterns":["` + e.prefix + `-y-*"],"template":{"mappings":{"properties":{"f":{"type":"no_such_type"}}}}}`
		status, raw, _ := e.do(esapi.IndicesPutIndexTemplateRequest{Name: name + "-bad", Body: strings.NewReader(body)})
		if status != 400 || decodeErr(t, raw).Error.Type != "mapper_parsing_exception" {
			t.Errorf("%d %s", status, raw)
		}
	})
	status, body, _ = e.do(esapi.IndicesDeleteIndexTemplateRequest{Name: name})
	if status != 200 {
		t.Fatalf("delete: %d %s", status, body)
	}
	status, body, _ = e.do(esapi.IndicesGetIndexTemplateRequest{Name: name})
	if status != 404 || decodeErr(t, body).Error.Type != "resource_not_found_exception" {
		t.Errorf("get after delete: %d %s", status, body)
	}
	if status, _, _ := e.do(esapi.IndicesExistsIndexTemplateRequest{Name: name}); status != 404 {
		t.Errorf("exists after delete: %d", status)
	}
}
