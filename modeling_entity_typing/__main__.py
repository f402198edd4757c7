"""`python -m modeling_entity_typing ...` is the `entity-typing` command (`bulk.cli`)."""

from .bulk.cli import console_main


if __name__ == "__main__":
    console_main()
