"""tacsol: a study kit for fine-tuning LLMs to decompile EVM bytecode (as three-address code) into Solidity.

Modules are imported lazily by the CLI and the notebooks; importing ``tacsol`` itself stays cheap (no torch).
"""
__version__ = "0.1.0"
