package inspect

import (
	"fmt"
	"strings"
	"unicode"
)

// valueLimit is how much of a value a one-line summary shows.
const valueLimit = 40

// Summary is a one-line account of the entry, for tables: the request's
// name in etcd's snake_case and its arguments.
func (e *Entry) Summary() string {
	var b strings.Builder
	switch {
	case e.ConfChange != nil:
		e.ConfChange.summary(&b)
	case e.Request != nil:
		r := e.Request
		fmt.Fprintf(&b, "%s %s", r.Method, r.Path)
		if !r.Val.IsZero() {
			fmt.Fprintf(&b, " val=%s", r.Val.Short(valueLimit))
		}
	case e.Range != nil:
		e.Range.summary(&b)
	case e.Put != nil:
		e.Put.summary(&b)
	case e.DeleteRange != nil:
		e.DeleteRange.summary(&b)
	case e.Txn != nil:
		e.Txn.summary(&b)
	case e.Compaction != nil:
		fmt.Fprintf(&b, "compaction revision=%d physical=%t", e.Compaction.Revision, e.Compaction.Physical)
	case e.LeaseGrant != nil:
		fmt.Fprintf(&b, "lease_grant id=%s ttl=%d", e.LeaseGrant.ID, e.LeaseGrant.TTL)
	case e.LeaseRevoke != nil:
		fmt.Fprintf(&b, "lease_revoke id=%s", e.LeaseRevoke.ID)
	case e.Type == TypeIRRLeaseCheckpoint:
		b.WriteString("lease_checkpoint")
		for _, c := range e.LeaseCheckpoint {
			fmt.Fprintf(&b, " id=%s remaining_ttl=%d", c.ID, c.RemainingTTL)
		}
	case e.Alarm != nil:
		fmt.Fprintf(&b, "alarm %s %s member=%s", e.Alarm.Action, e.Alarm.Alarm, e.Alarm.MemberID)
	case e.Auth != nil:
		b.WriteString(snake(strings.TrimPrefix(string(e.Type), "IRR")))
		a := e.Auth
		for _, kv := range [][2]string{{"user", a.User}, {"role", a.Role}, {"perm", a.Perm}} {
			if kv[1] != "" {
				fmt.Fprintf(&b, " %s=%s", kv[0], kv[1])
			}
		}
		writeRange(&b, a.Key, a.RangeEnd)
		if a.NoPassword {
			b.WriteString(" no_password")
		}
	case e.MemberAttr != nil:
		fmt.Fprintf(&b, "cluster_member_attr_set member=%s name=%s client_urls=%s",
			e.MemberAttr.MemberID, e.MemberAttr.Name, strings.Join(e.MemberAttr.ClientURLs, ","))
	case e.Downgrade != nil:
		fmt.Fprintf(&b, "downgrade_info_set enabled=%t version=%s", e.Downgrade.Enabled, e.Downgrade.Version)
	case e.Type == TypeIRRClusterVersionSet || e.Type == TypeIRRDowngradeVersionTest:
		fmt.Fprintf(&b, "%s version=%s", snake(strings.TrimPrefix(string(e.Type), "IRR")), e.Version)
	case e.Type == TypeNoOp:
		b.WriteString("no-op")
	case e.Error != "":
		b.WriteString("undecodable: " + e.Error)
	default:
		b.WriteString("internal_raft_request without a known request")
	}
	if e.Header != nil && e.Header.Username != "" {
		fmt.Fprintf(&b, " (user %s)", e.Header.Username)
	}
	return b.String()
}

// snake turns AuthUserAdd into auth_user_add.
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

func writeRange(b *strings.Builder, key, end Bytes) {
	if !key.IsZero() {
		fmt.Fprintf(b, " key=%s", key)
	}
	if !end.IsZero() {
		fmt.Fprintf(b, " range_end=%s", end)
	}
}

func (c *ConfChange) summary(b *strings.Builder) {
	if c.Type != "" {
		fmt.Fprintf(b, "%s id=%s", c.Type, c.NodeID)
	} else {
		b.WriteString("ConfChangeV2")
		for _, ch := range c.Changes {
			fmt.Fprintf(b, " %s id=%s", ch.Type, ch.NodeID)
		}
	}
	if m := c.Member; m != nil {
		if m.Name != "" {
			fmt.Fprintf(b, " name=%s", m.Name)
		}
		fmt.Fprintf(b, " peer_urls=%s", strings.Join(m.PeerURLs, ","))
		if m.IsLearner {
			b.WriteString(" learner")
		}
		if m.IsPromote {
			b.WriteString(" promote")
		}
	}
	if !c.Context.IsZero() {
		fmt.Fprintf(b, " context=%s", c.Context.Short(valueLimit))
	}
}

func (r *Range) summary(b *strings.Builder) {
	b.WriteString("range")
	writeRange(b, r.Key, r.RangeEnd)
	if r.Revision != 0 {
		fmt.Fprintf(b, " revision=%d", r.Revision)
	}
	if r.Limit != 0 {
		fmt.Fprintf(b, " limit=%d", r.Limit)
	}
}

func (p *Put) summary(b *strings.Builder) {
	fmt.Fprintf(b, "put key=%s", p.Key)
	if !p.IgnoreValue {
		fmt.Fprintf(b, " value=%s", p.Value.Short(valueLimit))
	}
	if p.Lease != 0 {
		fmt.Fprintf(b, " lease=%s", p.Lease)
	}
}

func (d *DeleteRange) summary(b *strings.Builder) {
	b.WriteString("delete_range")
	writeRange(b, d.Key, d.RangeEnd)
}

func (t *Txn) summary(b *strings.Builder) {
	b.WriteString("txn if [")
	for i, c := range t.Compare {
		if i > 0 {
			b.WriteString(", ")
		}
		key := c.Key.String()
		if !c.RangeEnd.IsZero() {
			key += ".." + c.RangeEnd.String()
		}
		fmt.Fprintf(b, "%s(%s) %s %v", c.Target, key, c.Result, c.Operand)
	}
	b.WriteString("] then [")
	opsSummary(b, t.Success)
	b.WriteString("] else [")
	opsSummary(b, t.Failure)
	b.WriteString("]")
}

func opsSummary(b *strings.Builder, ops []Op) {
	for i, o := range ops {
		if i > 0 {
			b.WriteString("; ")
		}
		switch {
		case o.Range != nil:
			o.Range.summary(b)
		case o.Put != nil:
			o.Put.summary(b)
		case o.DeleteRange != nil:
			o.DeleteRange.summary(b)
		case o.Txn != nil:
			o.Txn.summary(b)
		}
	}
}
