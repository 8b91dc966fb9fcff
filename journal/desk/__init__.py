"""The auditor's desk: journal search with names, bounded chain verification, the evidence registers, CSV."""
