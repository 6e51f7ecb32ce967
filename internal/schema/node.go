package schema

import (
	"bytes"
	"encoding/json"
)

// Leaf types, as in Kibana's schema.
const (
	Long = "long"
	// Byte is Kibana's type of services_per_agent['android/java'] (schema.ts):
	// a whole number from -128 to 127 (Validate flags one outside).
	Byte    = "byte"
	Float   = "float"
	Keyword = "keyword"
	Boolean = "boolean"
	Date    = "date"
)

// Node is one element of the schema: a leaf (Type set), an array (Items
// set) or an object (Props set).
type Node struct {
	Type  string
	Desc  string
	Items *Node
	Props []Prop
}

// Prop is a named child of an object; order is declaration order.
type Prop struct {
	Name string
	Node *Node
}

func leaf(typ, desc string) *Node { return &Node{Type: typ, Desc: desc} }

func long(desc string) *Node    { return leaf(Long, desc) }
func keyword(desc string) *Node { return leaf(Keyword, desc) }
func boolean(desc string) *Node { return leaf(Boolean, desc) }

func keywords(desc string) *Node { return &Node{Type: "array", Items: keyword(desc)} }

func arrayOf(n *Node) *Node { return &Node{Type: "array", Items: n} }

// obj builds an object from name/node pairs.
func obj(pairs ...any) *Node {
	n := &Node{}
	for i := 0; i < len(pairs); i += 2 {
		n.Props = append(n.Props, Prop{Name: pairs[i].(string), Node: pairs[i+1].(*Node)})
	}
	return n
}

// each builds an object with one child per name, made by f.
func each(names []string, f func(name string) *Node) *Node {
	n := &Node{}
	for _, name := range names {
		n.Props = append(n.Props, Prop{Name: name, Node: f(name)})
	}
	return n
}

// IsObject reports whether n is an object.
func (n *Node) IsObject() bool { return n.Type == "" && n.Items == nil }

// Child returns the named child of an object.
func (n *Node) Child(name string) (*Node, bool) {
	for _, p := range n.Props {
		if p.Name == name {
			return p.Node, true
		}
	}
	return nil, false
}

// orderedObject marshals keys in insertion order.
type orderedObject []struct {
	k string
	v any
}

func (o orderedObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, kv := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(kv.k)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(kv.v)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func (o *orderedObject) add(k string, v any) {
	*o = append(*o, struct {
		k string
		v any
	}{k, v})
}

// telemetrySchema renders n in Kibana's telemetry-schema format.
func telemetrySchema(n *Node) any {
	switch {
	case n.Items != nil:
		var o orderedObject
		o.add("type", "array")
		o.add("items", telemetrySchema(n.Items))
		return o
	case n.Type != "":
		var o orderedObject
		o.add("type", n.Type)
		var meta orderedObject
		meta.add("description", n.Desc)
		o.add("_meta", meta)
		return o
	default:
		var props orderedObject
		for _, p := range n.Props {
			props.add(p.Name, telemetrySchema(p.Node))
		}
		var o orderedObject
		o.add("properties", props)
		return o
	}
}

// esMapping renders n as an Elasticsearch mapping: arrays become their item
// type, keywords get ignore_above 1024.
func esMapping(n *Node) any {
	switch {
	case n.Items != nil:
		return esMapping(n.Items)
	case n.Type == Keyword:
		var o orderedObject
		o.add("type", Keyword)
		o.add("ignore_above", 1024)
		return o
	case n.Type == Byte:
		// More than 127 android/java services must not make the telemetry
		// index refuse the whole document: the value stays in _source.
		var o orderedObject
		o.add("type", Byte)
		o.add("ignore_malformed", true)
		return o
	case n.Type != "":
		var o orderedObject
		o.add("type", n.Type)
		return o
	default:
		var props orderedObject
		for _, p := range n.Props {
			props.add(p.Name, esMapping(p.Node))
		}
		var o orderedObject
		o.add("properties", props)
		return o
	}
}
