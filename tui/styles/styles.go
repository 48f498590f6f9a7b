// Package styles holds lbtop's lipgloss styles, in one place so that the
// pages and components agree on what red means. Colours are the terminal's
// own 16, so the operator's theme decides the shades.
package styles

import "charm.land/lipgloss/v2"

// Styles are the styles of every part of the screen.
type Styles struct {
	Title    lipgloss.Style // "lbtop" and page titles
	Header   lipgloss.Style // table column titles
	Selected lipgloss.Style // the selected row
	Down     lipgloss.Style // an unhealthy member's name, health and errors
	Good     lipgloss.Style // a leader, "quorum ok", agreement
	Warn     lipgloss.Style // getting close: db over 70% of quota, backup near its limit
	Bad      lipgloss.Style // QUORUM LOST, hash mismatch, stale backup, alarms
	Dim      lipgloss.Style // labels and absent values
	Up       lipgloss.Style // the ↑ change mark
	DownMark lipgloss.Style // the ↓ change mark

	BarUsed  lipgloss.Style // db bytes in use
	BarFree  lipgloss.Style // db bytes allocated but free
	BarEmpty lipgloss.Style // quota not yet allocated
}

// Default returns the styles lbtop uses.
func Default() *Styles {
	return &Styles{
		Title:    lipgloss.NewStyle().Bold(true),
		Header:   lipgloss.NewStyle().Bold(true).Underline(true),
		Selected: lipgloss.NewStyle().Reverse(true),
		Down:     lipgloss.NewStyle().Foreground(lipgloss.Red).Bold(true),
		Good:     lipgloss.NewStyle().Foreground(lipgloss.Green),
		Warn:     lipgloss.NewStyle().Foreground(lipgloss.Yellow),
		Bad:      lipgloss.NewStyle().Foreground(lipgloss.Red).Bold(true),
		Dim:      lipgloss.NewStyle().Faint(true),
		Up:       lipgloss.NewStyle().Foreground(lipgloss.Cyan),
		DownMark: lipgloss.NewStyle().Foreground(lipgloss.Magenta),
		BarUsed:  lipgloss.NewStyle().Foreground(lipgloss.Green),
		BarFree:  lipgloss.NewStyle().Foreground(lipgloss.Green).Faint(true),
		BarEmpty: lipgloss.NewStyle().Faint(true),
	}
}
