"""Option groups: flags several commands share, each group parsed into one value and rendered back as arguments."""
