set -e
# $1 = ec|rsa
k=$1
if [ $k = ec ]; then KEY="-newkey ec -pkeyopt ec_paramgen_curve:P-256"; else KEY="-newkey rsa:2048"; fi
openssl req -x509 $KEY -nodes -keyout $k-root.key -out $k-root.pem -days 3650 -subj "/CN=qossim test root $k" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req $KEY -nodes -keyout $k-int.key -out $k-int.csr -subj "/CN=qossim test intermediate $k" 2>/dev/null
printf "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n" > ca.ext
openssl x509 -req -in $k-int.csr -CA $k-root.pem -CAkey $k-root.key -CAcreateserial -out $k-int.pem -days 3650 -extfile ca.ext 2>/dev/null
for who in server client; do
openssl req $KEY -nodes -keyout $k-$who.key -out $k-$who.csr -subj "/CN=$who.qossim.test" 2>/dev/null
if [ $who = server ]; then eku=serverAuth; else eku=clientAuth; fi
printf "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=$eku\nsubjectAltName=DNS:$who.qossim.test\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n" > leaf.ext
openssl x509 -req -in $k-$who.csr -CA $k-int.pem -CAkey $k-int.key -CAcreateserial -out $k-$who.pem -days 3650 -extfile leaf.ext 2>/dev/null
cat $k-$who.pem $k-int.pem > $k-$who-chain.pem
done
for f in root int server client; do openssl x509 -in $k-$f.pem -outform DER -out $k-$f.der; echo "$k-$f.der $(stat -c %s $k-$f.der)"; done
