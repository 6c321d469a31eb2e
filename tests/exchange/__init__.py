"""The bilateral exchange (sync/exchange/): agreements, enforcement, pseudonyms, two countries
end to end.
"""
