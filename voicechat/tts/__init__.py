"""Text-to-speech backends: text in, MP3 bytes out."""
