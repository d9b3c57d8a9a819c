"""One reader per corpus source: each yields paragraph-sized English (or Spanish) documents from an installed package."""
