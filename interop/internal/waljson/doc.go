// Package waljson is the JSON form of raft and WAL values that the oracle
// programs print and read: entries, hard states, conf states and WAL
// snapshot records. Byte fields are standard base64. An entry's data is
// omitted when it is nil (a leader no-op) and "" when it is empty.
package waljson
