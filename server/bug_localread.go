//go:build lifeboat_bug_localread

package server

// A deliberate bug, built only with the tag lifeboat_bug_localread, for
// the robustness suite to show that its checker catches one: linearizable
// reads are served from this member's own state, without ReadIndex, so a
// member cut off from the leader answers stale reads.
func init() { bugLocalReads = true }
