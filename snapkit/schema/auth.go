package schema

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/authpb"
)

// Keys of the auth bucket.
var (
	AuthEnabledKey  = []byte("authEnabled")
	AuthRevisionKey = []byte("authRevision")
)

// AuthEnabled returns auth/authEnabled: true only for the single byte 1.
func AuthEnabled(tx *bolt.Tx) (bool, error) {
	v := get(tx, AuthBucket, AuthEnabledKey)
	if v == nil {
		return false, nil
	}
	if len(v) != 1 || v[0] > 1 {
		return false, badValue(AuthBucket, AuthEnabledKey, "%x, want 00 or 01", v)
	}
	return v[0] == 1, nil
}

// SetAuthEnabled writes auth/authEnabled.
func SetAuthEnabled(tx *bolt.Tx, enabled bool) error {
	v := []byte{0}
	if enabled {
		v[0] = 1
	}
	return put(tx, AuthBucket, AuthEnabledKey, v)
}

// AuthRevision returns auth/authRevision (0 if absent).
func AuthRevision(tx *bolt.Tx) (uint64, error) {
	return readUint64(tx, AuthBucket, AuthRevisionKey)
}

// SetAuthRevision writes auth/authRevision.
func SetAuthRevision(tx *bolt.Tx, rev uint64) error {
	return putUint64(tx, AuthBucket, AuthRevisionKey, rev)
}

// message is what authpb's generated types offer.
type message interface {
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
}

func forEachMessage[T message](tx *bolt.Tx, bucket []byte, newT func() T) ([]T, error) {
	b := tx.Bucket(bucket)
	if b == nil {
		return nil, nil
	}
	var out []T
	err := b.ForEach(func(k, v []byte) error {
		m := newT()
		if err := m.Unmarshal(v); err != nil {
			return badValue(bucket, k, "%v", err)
		}
		out = append(out, m)
		return nil
	})
	return out, err
}

func getMessage[T message](tx *bolt.Tx, bucket []byte, name string, m T) (bool, error) {
	v := get(tx, bucket, []byte(name))
	if v == nil {
		return false, nil
	}
	if err := m.Unmarshal(v); err != nil {
		return false, badValue(bucket, []byte(name), "%v", err)
	}
	return true, nil
}

func putMessage(tx *bolt.Tx, bucket []byte, name []byte, m message) error {
	v, err := m.Marshal()
	if err != nil {
		return fmt.Errorf("schema: marshal %s/%q: %w", bucket, name, err)
	}
	return put(tx, bucket, name, v)
}

// Users returns every user of authUsers in name order.
func Users(tx *bolt.Tx) ([]*authpb.User, error) {
	return forEachMessage(tx, AuthUsersBucket, func() *authpb.User { return new(authpb.User) })
}

// User returns the user name, or nil if there is none.
func User(tx *bolt.Tx, name string) (*authpb.User, error) {
	u := new(authpb.User)
	if ok, err := getMessage(tx, AuthUsersBucket, name, u); !ok {
		return nil, err
	}
	return u, nil
}

// PutUser writes u under its name.
func PutUser(tx *bolt.Tx, u *authpb.User) error { return putMessage(tx, AuthUsersBucket, u.Name, u) }

// DeleteUser removes the user name.
func DeleteUser(tx *bolt.Tx, name string) error { return del(tx, AuthUsersBucket, []byte(name)) }

// Roles returns every role of authRoles in name order.
func Roles(tx *bolt.Tx) ([]*authpb.Role, error) {
	return forEachMessage(tx, AuthRolesBucket, func() *authpb.Role { return new(authpb.Role) })
}

// Role returns the role name, or nil if there is none.
func Role(tx *bolt.Tx, name string) (*authpb.Role, error) {
	r := new(authpb.Role)
	if ok, err := getMessage(tx, AuthRolesBucket, name, r); !ok {
		return nil, err
	}
	return r, nil
}

// PutRole writes r under its name.
func PutRole(tx *bolt.Tx, r *authpb.Role) error { return putMessage(tx, AuthRolesBucket, r.Name, r) }

// DeleteRole removes the role name.
func DeleteRole(tx *bolt.Tx, name string) error { return del(tx, AuthRolesBucket, []byte(name)) }
