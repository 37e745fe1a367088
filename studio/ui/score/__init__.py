"""The score view: verovio engraving in a helper process, drawn with QtSvg."""
