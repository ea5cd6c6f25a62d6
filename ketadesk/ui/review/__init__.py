"""The interaction review screen, its finding cards, and the interruptive alert."""
