package inspect

import (
	"fmt"
	"slices"
	"strings"
)

// Type names an entry the way etcd-dump-logs' -entry-type flag does. An
// entry answers to its own Type and to the groups above it (see Names):
// every IRRPut is also an InternalRaftRequest and a Normal entry.
type Type string

// Groups: each selects a family of entries.
const (
	TypeNormal              Type = "Normal"              // every Normal entry
	TypeConfigChange        Type = "ConfigChange"        // raft ConfChange (and ConfChangeV2)
	TypeInternalRaftRequest Type = "InternalRaftRequest" // every v3 request; alone, one carrying no known request
)

// The types of single entries.
const (
	TypeConfigChangeV2 Type = "ConfigChangeV2" // raft ConfChangeV2; etcd writes none
	TypeNoOp           Type = "NoOp"           // empty Normal entry, proposed by a new leader
	TypeRequest        Type = "Request"        // v2 etcdserverpb.Request
	TypeUnknownNormal  Type = "UnknownNormal"  // Normal data that neither decoder accepts
	TypeUnknown        Type = "Unknown"        // an entry type raft does not define

	TypeIRRRange                    Type = "IRRRange"
	TypeIRRPut                      Type = "IRRPut"
	TypeIRRDeleteRange              Type = "IRRDeleteRange"
	TypeIRRTxn                      Type = "IRRTxn"
	TypeIRRCompaction               Type = "IRRCompaction"
	TypeIRRLeaseGrant               Type = "IRRLeaseGrant"
	TypeIRRLeaseRevoke              Type = "IRRLeaseRevoke"
	TypeIRRLeaseCheckpoint          Type = "IRRLeaseCheckpoint"
	TypeIRRAlarm                    Type = "IRRAlarm"
	TypeIRRV2                       Type = "IRRV2"
	TypeIRRAuthEnable               Type = "IRRAuthEnable"
	TypeIRRAuthDisable              Type = "IRRAuthDisable"
	TypeIRRAuthStatus               Type = "IRRAuthStatus"
	TypeIRRAuthenticate             Type = "IRRAuthenticate"
	TypeIRRAuthUserAdd              Type = "IRRAuthUserAdd"
	TypeIRRAuthUserDelete           Type = "IRRAuthUserDelete"
	TypeIRRAuthUserGet              Type = "IRRAuthUserGet"
	TypeIRRAuthUserChangePassword   Type = "IRRAuthUserChangePassword"
	TypeIRRAuthUserGrantRole        Type = "IRRAuthUserGrantRole"
	TypeIRRAuthUserRevokeRole       Type = "IRRAuthUserRevokeRole"
	TypeIRRAuthUserList             Type = "IRRAuthUserList"
	TypeIRRAuthRoleList             Type = "IRRAuthRoleList"
	TypeIRRAuthRoleAdd              Type = "IRRAuthRoleAdd"
	TypeIRRAuthRoleDelete           Type = "IRRAuthRoleDelete"
	TypeIRRAuthRoleGet              Type = "IRRAuthRoleGet"
	TypeIRRAuthRoleGrantPermission  Type = "IRRAuthRoleGrantPermission"
	TypeIRRAuthRoleRevokePermission Type = "IRRAuthRoleRevokePermission"
	TypeIRRClusterVersionSet        Type = "IRRClusterVersionSet"
	TypeIRRClusterMemberAttrSet     Type = "IRRClusterMemberAttrSet"
	TypeIRRDowngradeInfoSet         Type = "IRRDowngradeInfoSet"
	TypeIRRDowngradeVersionTest     Type = "IRRDowngradeVersionTest"
)

// AllTypes lists every name a filter accepts, groups first.
var AllTypes = []Type{
	TypeNormal, TypeConfigChange, TypeInternalRaftRequest,
	TypeConfigChangeV2, TypeNoOp, TypeRequest, TypeUnknownNormal, TypeUnknown,
	TypeIRRRange, TypeIRRPut, TypeIRRDeleteRange, TypeIRRTxn, TypeIRRCompaction,
	TypeIRRLeaseGrant, TypeIRRLeaseRevoke, TypeIRRLeaseCheckpoint, TypeIRRAlarm, TypeIRRV2,
	TypeIRRAuthEnable, TypeIRRAuthDisable, TypeIRRAuthStatus, TypeIRRAuthenticate,
	TypeIRRAuthUserAdd, TypeIRRAuthUserDelete, TypeIRRAuthUserGet, TypeIRRAuthUserChangePassword,
	TypeIRRAuthUserGrantRole, TypeIRRAuthUserRevokeRole, TypeIRRAuthUserList, TypeIRRAuthRoleList,
	TypeIRRAuthRoleAdd, TypeIRRAuthRoleDelete, TypeIRRAuthRoleGet,
	TypeIRRAuthRoleGrantPermission, TypeIRRAuthRoleRevokePermission,
	TypeIRRClusterVersionSet, TypeIRRClusterMemberAttrSet, TypeIRRDowngradeInfoSet, TypeIRRDowngradeVersionTest,
}

// ParseTypes reads a comma-separated list of type names, as given to
// --entry-type. Names match case-insensitively; an unknown name is an
// error that lists the known ones.
func ParseTypes(list string) ([]Type, error) {
	var out []Type
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		i := slices.IndexFunc(AllTypes, func(t Type) bool { return strings.EqualFold(string(t), name) })
		if i < 0 {
			names := make([]string, len(AllTypes))
			for j, t := range AllTypes {
				names[j] = string(t)
			}
			return nil, fmt.Errorf("inspect: unknown entry type %q (known: %s)", name, strings.Join(names, ", "))
		}
		out = append(out, AllTypes[i])
	}
	return out, nil
}

// Names lists every type name e answers to: its own Type and its groups.
func (e *Entry) Names() []Type {
	switch {
	case e.Type == TypeConfigChange:
		return []Type{TypeConfigChange}
	case e.Type == TypeConfigChangeV2:
		return []Type{TypeConfigChange, TypeConfigChangeV2}
	case e.Type == TypeUnknown:
		return []Type{TypeUnknown}
	case e.Type == TypeInternalRaftRequest:
		return []Type{TypeNormal, TypeInternalRaftRequest}
	case strings.HasPrefix(string(e.Type), "IRR"):
		return []Type{TypeNormal, TypeInternalRaftRequest, e.Type}
	default: // NoOp, Request, UnknownNormal
		return []Type{TypeNormal, e.Type}
	}
}
