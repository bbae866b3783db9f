"""Camera frames and pictures: YUV 4:2:2 layouts and colour, raw files, photographs, the input contract."""
