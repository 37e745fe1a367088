"""The piano roll: canvas, keyboard, ruler, velocity lane, tools and the editor widget that holds them."""
