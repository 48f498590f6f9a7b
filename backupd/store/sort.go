package store

import (
	"slices"
)

// sortBackups orders backups oldest first (time, then cluster, then revision).
func sortBackups(bs []Backup) {
	slices.SortFunc(bs, func(a, b Backup) int {
		if c := a.ID.Time.Compare(b.ID.Time); c != 0 {
			return c
		}
		return a.ID.Compare(b.ID)
	})
}
