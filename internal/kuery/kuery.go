package kuery

import (
	"fmt"
	"strings"
	"unicode"
)

// Kind is a node type of the parsed query, as in Kibana's function nodes.
type Kind string

const (
	And    Kind = "and"
	Or     Kind = "or"
	Not    Kind = "not"
	Is     Kind = "is"
	Exists Kind = "exists"
	Range  Kind = "range"
	Nested Kind = "nested"
)

// Node is a parsed query.
type Node struct {
	Kind Kind
	// Field is the field of is/exists/range/nested; nil for free text.
	Field *Literal
	// Children are the operands of and/or/not, or the inner query of nested.
	Children []*Node
	// Value is the value of is/range (text only; not needed for field names).
	Value *Literal
	// Op is the range operator.
	Op string
}

// Literal is a field or value; Wildcard marks an unquoted literal with '*'.
type Literal struct {
	Text     string
	Wildcard bool
	Quoted   bool
}

// SyntaxError reports invalid KQL with the position it was found at.
type SyntaxError struct {
	Query string
	Pos   int
	Msg   string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("KQL syntax error at position %d of %q: %s", e.Pos, e.Query, e.Msg)
}

// Parse parses q. An empty or blank query is nil (match all).
func Parse(q string) (*Node, error) {
	p := &parser{s: []rune(q), q: q}
	p.space()
	if p.eof() {
		return nil, nil
	}
	n, err := p.orQuery()
	if err != nil {
		return nil, err
	}
	p.space()
	if !p.eof() {
		return nil, p.errorf("unexpected %q", string(p.s[p.i]))
	}
	return n, nil
}

// Fields returns the field names used by q, de-duplicated in first-seen
// order: a literal field gives its name, a wildcard field its pattern, free
// text nothing. For nested queries only the nested path counts, as in Kibana.
func Fields(q string) ([]string, error) {
	n, err := Parse(q)
	if err != nil {
		return nil, err
	}
	var out []string
	seen := map[string]bool{}
	var walk func(n *Node)
	walk = func(n *Node) {
		if n == nil {
			return
		}
		switch n.Kind {
		case And, Or, Not:
			for _, c := range n.Children {
				walk(c)
			}
		case Is, Exists, Range, Nested:
			if n.Field != nil && !seen[n.Field.Text] {
				seen[n.Field.Text] = true
				out = append(out, n.Field.Text)
			}
		}
	}
	walk(n)
	if out == nil {
		out = []string{}
	}
	return out, nil
}

type parser struct {
	s []rune
	i int
	q string
}

func (p *parser) errorf(format string, a ...any) error {
	return &SyntaxError{Query: p.q, Pos: p.i, Msg: fmt.Sprintf(format, a...)}
}

func (p *parser) eof() bool { return p.i >= len(p.s) }

func (p *parser) space() bool {
	start := p.i
	for !p.eof() && unicode.IsSpace(p.s[p.i]) {
		p.i++
	}
	return p.i > start
}

func (p *parser) peek(r rune) bool { return !p.eof() && p.s[p.i] == r }

// keyword matches a case-insensitive keyword surrounded by whitespace
// (or followed by '(' for not), without consuming on failure.
func (p *parser) keyword(kw string, needSpaceBefore bool) bool {
	save := p.i
	if needSpaceBefore && !p.space() {
		p.i = save
		return false
	}
	end := p.i + len(kw)
	if end > len(p.s) || !strings.EqualFold(string(p.s[p.i:end]), kw) {
		p.i = save
		return false
	}
	if end < len(p.s) && !unicode.IsSpace(p.s[end]) && p.s[end] != '(' {
		p.i = save
		return false
	}
	p.i = end
	p.space()
	return true
}

// chain parses operand (kw operand)* into one kind node, or the operand alone.
func (p *parser) chain(kind Kind, kw string, operand func() (*Node, error)) (*Node, error) {
	first, err := operand()
	if err != nil {
		return nil, err
	}
	children := []*Node{first}
	for p.keyword(kw, true) {
		n, err := operand()
		if err != nil {
			return nil, err
		}
		children = append(children, n)
	}
	if len(children) == 1 {
		return first, nil
	}
	return &Node{Kind: kind, Children: children}, nil
}

func (p *parser) orQuery() (*Node, error)  { return p.chain(Or, "or", p.andQuery) }
func (p *parser) andQuery() (*Node, error) { return p.chain(And, "and", p.notQuery) }

func (p *parser) notQuery() (*Node, error) {
	if p.keyword("not", false) {
		n, err := p.subQuery()
		if err != nil {
			return nil, err
		}
		return &Node{Kind: Not, Children: []*Node{n}}, nil
	}
	return p.subQuery()
}

// enclosed parses open inner close when the input starts with open; ok is
// false (and nothing consumed) otherwise.
func (p *parser) enclosed(open, close rune, inner func() (*Node, error)) (n *Node, ok bool, err error) {
	if !p.peek(open) {
		return nil, false, nil
	}
	p.i++
	p.space()
	if n, err = inner(); err != nil {
		return nil, true, err
	}
	p.space()
	if !p.peek(close) {
		return nil, true, p.errorf("expected '%c'", close)
	}
	p.i++
	return n, true, nil
}

func (p *parser) subQuery() (*Node, error) {
	p.space()
	if n, ok, err := p.enclosed('(', ')', p.orQuery); ok {
		return n, err
	}
	return p.expression()
}

var rangeOps = []string{"<=", ">=", "<", ">"}

func (p *parser) expression() (*Node, error) {
	start := p.i
	lit, err := p.literal()
	if err != nil {
		return nil, err
	}
	p.space()
	for _, op := range rangeOps {
		if strings.HasPrefix(string(p.s[p.i:]), op) {
			p.i += len([]rune(op))
			p.space()
			v, err := p.literal()
			if err != nil {
				return nil, err
			}
			return &Node{Kind: Range, Field: lit, Op: op, Value: v}, nil
		}
	}
	if p.peek(':') {
		p.i++
		p.space()
		if inner, ok, err := p.enclosed('{', '}', p.orQuery); ok {
			if err != nil {
				return nil, err
			}
			return &Node{Kind: Nested, Field: lit, Children: []*Node{inner}}, nil
		}
		return p.listOfValues(lit)
	}
	// Free text: a value without a field. Re-read it as a value (it may be a
	// run of several words, which KQL treats as one value).
	p.i = start
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	return &Node{Kind: Is, Value: v}, nil
}

// listOfValues parses the right side of field: — a value, or a parenthesised
// or/and/not list of values, each applied to field.
func (p *parser) listOfValues(field *Literal) (*Node, error) {
	if n, ok, err := p.enclosed('(', ')', func() (*Node, error) { return p.orValues(field) }); ok {
		return n, err
	}
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	if !v.Quoted && v.Text == "*" {
		return &Node{Kind: Exists, Field: field}, nil
	}
	return &Node{Kind: Is, Field: field, Value: v}, nil
}

func (p *parser) orValues(field *Literal) (*Node, error) {
	return p.chain(Or, "or", func() (*Node, error) { return p.andValues(field) })
}

func (p *parser) andValues(field *Literal) (*Node, error) {
	return p.chain(And, "and", func() (*Node, error) { return p.notValue(field) })
}

func (p *parser) notValue(field *Literal) (*Node, error) {
	if p.keyword("not", false) {
		n, err := p.listOfValues(field)
		if err != nil {
			return nil, err
		}
		return &Node{Kind: Not, Children: []*Node{n}}, nil
	}
	p.space()
	return p.listOfValues(field)
}

// special characters end an unquoted literal (kql.peggy SpecialCharacter).
func special(r rune) bool { return strings.ContainsRune(`\():<>"{}`, r) }

// literal parses a quoted string or one unquoted word.
func (p *parser) literal() (*Literal, error) {
	if p.eof() {
		return nil, p.errorf("unexpected end of query")
	}
	if p.peek('"') {
		return p.quoted()
	}
	var b strings.Builder
	wild := false
	for !p.eof() {
		r := p.s[p.i]
		if r == '\\' {
			if p.i+1 >= len(p.s) {
				return nil, p.errorf("dangling escape")
			}
			b.WriteRune(p.s[p.i+1])
			p.i += 2
			continue
		}
		if unicode.IsSpace(r) || special(r) {
			break
		}
		if r == '*' {
			wild = true
		}
		b.WriteRune(r)
		p.i++
	}
	if b.Len() == 0 {
		if p.eof() {
			return nil, p.errorf("unexpected end of query")
		}
		return nil, p.errorf("unexpected %q", string(p.s[p.i]))
	}
	text := b.String()
	return &Literal{Text: text, Wildcard: wild}, nil
}

// value parses a quoted string or a run of unquoted words up to an operator
// keyword or a closing bracket (KQL lets "foo bar" without quotes be one value).
func (p *parser) value() (*Literal, error) {
	if p.peek('"') {
		return p.quoted()
	}
	first, err := p.literal()
	if err != nil {
		return nil, err
	}
	words := []string{first.Text}
	wild := first.Wildcard
	for {
		save := p.i
		if !p.space() || p.eof() || special(p.s[p.i]) {
			p.i = save
			break
		}
		if p.keyword("or", false) || p.keyword("and", false) || p.keyword("not", false) {
			p.i = save
			break
		}
		next, err := p.literal()
		if err != nil {
			p.i = save
			break
		}
		// a word followed by ':' or a range operator starts a new expression: not ours
		probe := p.i
		p.space()
		if p.peek(':') || p.peek('<') || p.peek('>') {
			p.i = save
			break
		}
		p.i = probe
		words = append(words, next.Text)
		wild = wild || next.Wildcard
	}
	return &Literal{Text: strings.Join(words, " "), Wildcard: wild}, nil
}

func (p *parser) quoted() (*Literal, error) {
	start := p.i
	p.i++ // opening quote
	var b strings.Builder
	for !p.eof() {
		r := p.s[p.i]
		switch r {
		case '\\':
			if p.i+1 >= len(p.s) {
				return nil, p.errorf("dangling escape")
			}
			b.WriteRune(p.s[p.i+1])
			p.i += 2
			continue
		case '"':
			p.i++
			return &Literal{Text: b.String(), Quoted: true}, nil
		}
		b.WriteRune(r)
		p.i++
	}
	p.i = start
	return nil, p.errorf("unterminated quoted string")
}
