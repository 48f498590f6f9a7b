package tui

import (
	"context"
	"errors"
	"fmt"
	"io"

	tea "charm.land/bubbletea/v2"
)

// renderFPS caps bubbletea's frames. The screen changes on a refresh or a
// key, so 10 frames a second answer keys within 100ms; bubbletea's default
// of 60 costs three times the CPU of everything else lbtop does (measured
// by BenchmarkLbtopSteadyState5Members: 1.7-2.2% of a core at 60, 0.7% at
// 10).
const renderFPS = 10

// Run shows lbtop on the terminal of in and out until the user quits or
// ctx ends; nil in and out are the process's terminal.
func Run(ctx context.Context, o Options, in io.Reader, out io.Writer) error {
	o.Context = ctx
	opts := []tea.ProgramOption{tea.WithContext(ctx), tea.WithFPS(renderFPS)}
	if in != nil {
		opts = append(opts, tea.WithInput(in))
	}
	if out != nil {
		opts = append(opts, tea.WithOutput(out))
	}
	_, err := tea.NewProgram(New(o), opts...).Run()
	if err != nil && ctx.Err() != nil && errors.Is(err, tea.ErrProgramKilled) {
		return nil // asked to stop
	}
	if err != nil {
		return fmt.Errorf("tui: %w", err)
	}
	return nil
}
