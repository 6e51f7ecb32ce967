// Package kuery parses Kibana Query Language (KQL) and lists the field names
// a query uses, as Kibana's getKueryFields does for the service_groups and
// custom_dashboards telemetry tasks. It follows Kibana's kuery grammar
// (kql.peggy): or/and/not with the usual precedence, parentheses, field:value
// with value lists, field:* (exists), range operators, nested field:{…}
// queries, quoted strings and escapes, and wildcards.
package kuery
