"""Big-Five personality control at decoding time with unsupervisedly built lexicons (arXiv 2310.16582)"""

__version__ = "0.1.0"
