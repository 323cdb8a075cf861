"""Customer profiles, their channel identities (one person across every channel), notes and merges."""
