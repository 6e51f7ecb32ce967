package kuery

import (
	"errors"
	"strings"
	"testing"
)

func TestFields(t *testing.T) {
	tests := []struct {
		q    string
		want string
	}{
		{`service.name: "opbeans-java"`, "service.name"},
		{`service.name: opbeans-java and service.environment: production`, "service.name,service.environment"},
		{`service.name: a or service.name: b or agent.name: java`, "service.name,agent.name"},
		{`not service.environment: staging`, "service.environment"},
		{`NOT (labels.team: a AND labels.env: b)`, "labels.team,labels.env"},
		{`transaction.duration.us >= 1000 and http.response.status_code < 500`, "transaction.duration.us,http.response.status_code"},
		{`service.name: *`, "service.name"},
		{`labels.*: foo`, "labels.*"},
		{`service.name: (a or b or not c)`, "service.name"},
		{`agent.name: java and (host.name: x or container.id: y)`, "agent.name,host.name,container.id"},
		{`user:{ first: "Alice" and last: "White" }`, "user"},
		{`free text only`, ""},
		{`"quoted free text"`, ""},
		{`opbeans and service.name: x`, "service.name"},
		{`service.name: opbeans*`, "service.name"},
		{`"service.name": x`, "service.name"},
		{`service\:name: x`, "service:name"},
		{`service.name:x`, "service.name"},
		{`service.name: "a b" or service.name: c d`, "service.name"},
		{``, ""},
		{`   `, ""},
	}
	for _, tc := range tests {
		got, err := Fields(tc.q)
		if err != nil {
			t.Errorf("Fields(%q): %v", tc.q, err)
			continue
		}
		if strings.Join(got, ",") != tc.want {
			t.Errorf("Fields(%q) = %q, want %q", tc.q, strings.Join(got, ","), tc.want)
		}
	}
}

func TestInvalid(t *testing.T) {
	for _, q := range []string{
		`service.name: (a or b`,
		`service.name: "unterminated`,
		`(service.name: a`,
		`service.name: a)`,
		`service.name >`,
		`user:{ first: a`,
		`service.name: a \`,
	} {
		_, err := Fields(q)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Fields(%q) = %v, want a SyntaxError", q, err)
		}
	}
}

func TestParseTree(t *testing.T) {
	n, err := Parse(`a: 1 or b: 2 and not c: *`)
	if err != nil {
		t.Fatal(err)
	}
	if n.Kind != Or || len(n.Children) != 2 || n.Children[1].Kind != And || n.Children[1].Children[1].Kind != Not ||
		n.Children[1].Children[1].Children[0].Kind != Exists {
		t.Errorf("precedence wrong: %+v", n)
	}
}

func FuzzFields(f *testing.F) {
	for _, s := range []string{`a: b`, `not (x: 1 or y >= 2)`, `u:{ a: "b" }`, `"x`, `\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		fields, err := Fields(q)
		if err == nil && fields == nil {
			t.Fatal("nil fields without error")
		}
	})
}
