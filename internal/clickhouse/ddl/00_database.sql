CREATE DATABASE {{ident .Database}}
