package schema

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
)

// Alarms returns the raised alarms, in key order. Each key of the alarm
// bucket is a marshaled AlarmMember and its value is empty.
func Alarms(tx *bolt.Tx) ([]*etcdserverpb.AlarmMember, error) {
	b := tx.Bucket(AlarmBucket)
	if b == nil {
		return nil, nil
	}
	var out []*etcdserverpb.AlarmMember
	err := b.ForEach(func(k, _ []byte) error {
		a := new(etcdserverpb.AlarmMember)
		if err := a.Unmarshal(k); err != nil {
			return badValue(AlarmBucket, k, "AlarmMember key: %v", err)
		}
		out = append(out, a)
		return nil
	})
	return out, err
}

func alarmKey(a *etcdserverpb.AlarmMember) ([]byte, error) {
	k, err := a.Marshal()
	if err != nil {
		return nil, fmt.Errorf("schema: marshal alarm %v: %w", a, err)
	}
	return k, nil
}

// PutAlarm records a raised alarm.
func PutAlarm(tx *bolt.Tx, a *etcdserverpb.AlarmMember) error {
	k, err := alarmKey(a)
	if err != nil {
		return err
	}
	return put(tx, AlarmBucket, k, nil)
}

// DeleteAlarm clears an alarm.
func DeleteAlarm(tx *bolt.Tx, a *etcdserverpb.AlarmMember) error {
	k, err := alarmKey(a)
	if err != nil {
		return err
	}
	return del(tx, AlarmBucket, k)
}
