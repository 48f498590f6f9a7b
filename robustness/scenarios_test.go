package robustness

import (
	"context"
)

// scenarios are the named faults, each run under the same traffic.
var scenarios = []scenario{
	{"baseline", func(ctx context.Context, e *env) { <-ctx.Done() }},
}
