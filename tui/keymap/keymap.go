// Package keymap is lbtop's one keymap: every key the screens react to is a
// binding here, and the help screen is built from it.
package keymap

import "charm.land/bubbles/v2/key"

// KeyMap holds every binding.
type KeyMap struct {
	Up      key.Binding
	Down    key.Binding
	Detail  key.Binding
	Back    key.Binding
	Refresh key.Binding
	Filter  key.Binding
	Help    key.Binding
	Quit    key.Binding
}

// Default returns lbtop's keys.
func Default() *KeyMap {
	return &KeyMap{
		Up:      key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
		Down:    key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
		Detail:  key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "member detail")),
		Back:    key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back / clear filter")),
		Refresh: key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "refresh now")),
		Filter:  key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter")),
		Help:    key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help")),
		Quit:    key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "quit")),
	}
}

// ShortHelp is the one-line help at the bottom of the screen.
func (k *KeyMap) ShortHelp() []key.Binding {
	return []key.Binding{k.Up, k.Down, k.Detail, k.Refresh, k.Filter, k.Help, k.Quit}
}

// FullHelp is the help screen, in columns.
func (k *KeyMap) FullHelp() [][]key.Binding {
	return [][]key.Binding{
		{k.Up, k.Down, k.Detail, k.Back},
		{k.Refresh, k.Filter, k.Help, k.Quit},
	}
}
