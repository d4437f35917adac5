"""The data: datasets.py downloads, verifies, prepares and loads the datasets; sequences.py makes the recurrent
track's noise-padded row sequences from the images."""
