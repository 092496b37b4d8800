"""What every layer uses: exceptions and exit codes, closed option values, logs and progress, atomic writes."""
