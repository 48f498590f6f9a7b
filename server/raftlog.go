package server

import (
	"fmt"
	"log/slog"

	"go.etcd.io/raft/v3"
)

// raftLogger adapts slog to raft.Logger. raft calls Panic and Fatal only on
// broken invariants and expects them not to return, so they log and panic.
type raftLogger struct{ lg *slog.Logger }

var _ raft.Logger = raftLogger{}

func (l raftLogger) Debug(v ...any)                 { l.lg.Debug(fmt.Sprint(v...)) }
func (l raftLogger) Debugf(format string, v ...any) { l.lg.Debug(fmt.Sprintf(format, v...)) }
func (l raftLogger) Info(v ...any)                  { l.lg.Info(fmt.Sprint(v...)) }
func (l raftLogger) Infof(format string, v ...any)  { l.lg.Info(fmt.Sprintf(format, v...)) }
func (l raftLogger) Warning(v ...any)               { l.lg.Warn(fmt.Sprint(v...)) }
func (l raftLogger) Warningf(format string, v ...any) {
	l.lg.Warn(fmt.Sprintf(format, v...))
}
func (l raftLogger) Error(v ...any)                 { l.lg.Error(fmt.Sprint(v...)) }
func (l raftLogger) Errorf(format string, v ...any) { l.lg.Error(fmt.Sprintf(format, v...)) }
func (l raftLogger) Fatal(v ...any)                 { l.Panic(v...) }
func (l raftLogger) Fatalf(format string, v ...any) { l.Panicf(format, v...) }
func (l raftLogger) Panic(v ...any) {
	msg := fmt.Sprint(v...)
	l.lg.Error(msg)
	panic(msg)
}
func (l raftLogger) Panicf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.lg.Error(msg)
	panic(msg)
}
