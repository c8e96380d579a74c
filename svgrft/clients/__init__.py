"""The only code that talks to the Fireworks SDK, openai and eval-protocol."""
