package tui

import (
	"context"
	"errors"
	"fmt"
	"io"

	tea "charm.land/bubbletea/v2"
)

// Run shows lbtop on the terminal of in and out until the user quits or
// ctx ends; nil in and out are the process's terminal.
func Run(ctx context.Context, o Options, in io.Reader, out io.Writer) error {
	o.Context = ctx
	opts := []tea.ProgramOption{tea.WithContext(ctx)}
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
